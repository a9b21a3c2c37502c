"""`hwprov migrate`: print (or write) the compose edit that drops `privileged: true`."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

from hwprov.commands.inventory import scanned
from hwprov.commands.options import Subparsers, compose_options, json_option, plugin_options
from hwprov.commands.output import write_atomically
from hwprov.compose.loader import load_project, load_project_text
from hwprov.errors import HwprovError
from hwprov.export.migrate import migrate, summary
from hwprov.planning.build import build_plan
from hwprov.schemas import Schema, versioned


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "migrate",
        help="the compose edit that takes privileged services to least privilege",
        description="For every service with privileged: true, work out from the attached "
        "hardware what it really uses, and print a diff of the compose file that replaces "
        "privileged with io.hwprov.device.* labels matching that hardware by identity, plus "
        "the capabilities, network mode and feature labels its grants need. Commit the result "
        "to the release: on a balena device it is the only durable way to un-privilege a "
        "supervisor-owned service. Run it with the hardware attached.",
        epilog="example: hwprov migrate -f docker-compose.yml > unprivilege.patch",
    )
    compose_options(p)
    plugin_options(p)
    p.add_argument("--write", action="store_true", help="edit the file in place")
    json_option(p, "what each service gets, as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args.file)
    text = Path(args.file).read_text()
    session = scanned(args)
    hardware = session.hardware()
    plan = build_plan(project, hardware, session.host, session.refused())
    result = migrate(text, project, plan, hardware, session.host.grant)
    # The edit must load and leave nothing privileged, or it is not offered at all.
    try:
        after = load_project_text(result.text, str(args.file), env=dict(os.environ))
    except HwprovError as err:
        raise HwprovError(f"the migrated file would not load ({err}); file a bug") from None
    still = [s.name for s in after.services if s.privileged]
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        doc = {"services": [summary(m) for m in result.migrations]}
        json.dump(versioned(Schema.MIGRATE, doc), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not result.migrations:
        print("nothing to migrate: no service is privileged", file=sys.stderr)
    elif args.write:
        write_atomically(Path(args.file), result.text)
        print(f"wrote {args.file}", file=sys.stderr)
    else:
        sys.stdout.writelines(
            difflib.unified_diff(
                text.splitlines(keepends=True),
                result.text.splitlines(keepends=True),
                f"a/{Path(args.file).name}",
                f"b/{Path(args.file).name}",
            )
        )
    if still:
        print(f"note: still privileged (edit by hand): {', '.join(still)}", file=sys.stderr)
        return 3
    return 0
