"""Where the simulator finds its board descriptions.

The boards live in the checkout's `hw-fixtures/`, beside the code, not in the installed package:
an installed hwprov that simulates boards names the folder with HWPROV_FIXTURES.
"""

from __future__ import annotations

import os
from pathlib import Path

# agent/hwprov/sim/paths.py -> the checkout
CHECKOUT = Path(__file__).resolve().parents[3]


def fixtures_dir() -> Path:
    """The folder of board descriptions; HWPROV_FIXTURES overrides it for out-of-tree boards."""
    return Path(os.environ.get("HWPROV_FIXTURES", CHECKOUT / "hw-fixtures"))
