import sys

from hwprov.commands.main import main

sys.exit(main())
