"""`hwprov cdi`: write CDI specs so `docker run --device hwprov.io/i2c=1` finds the hardware."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hwprov.commands.inventory import scanned
from hwprov.commands.options import Subparsers, plugin_options
from hwprov.commands.output import print_problems, write_atomically
from hwprov.errors import HwprovError
from hwprov.export.cdi import VENDOR, bare, build_specs, problems, qualified

FORMATS = ("yaml", "json")
SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
STEM = "hwprov"
HEADER = "# Written by `hwprov cdi` from the attached hardware; run it again after a change.\n"


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "cdi",
        help="write Container Device Interface specs for the attached hardware",
        description="Scan the hardware and describe it as CDI specs, one per kind, each at the "
        "lowest cdiVersion its fields need (0.5.0 at most without --annotations, so podman 4.3 "
        "reads them), for Docker 25+, podman and containerd: `--device hwprov.io/i2c=1`, "
        "`hwprov.io/serial=ftdi-A50285BI`, `hwprov.io/gpio=gpiochip0`, "
        "`hwprov.io/bluetooth=hci0`. A CDI file holds one kind, so --output names a folder "
        "(hwprov-<kind>.yaml in it) or a file whose name is the stem (/etc/cdi/hwprov.yaml "
        "gives /etc/cdi/hwprov-i2c.yaml, ...); stale hwprov files there are removed. Without "
        "--output the specs are printed: a YAML stream, or a JSON array. See docs/cdi.md.",
        epilog="example: hwprov cdi --output /etc/cdi/hwprov.yaml",
    )
    p.add_argument(
        "--output",
        metavar="PATH",
        help="folder or file stem to write to, e.g. /etc/cdi/ or /var/run/cdi/hwprov.json "
        "(default: print)",
    )
    p.add_argument("--format", choices=FORMATS, help="default: from the --output suffix, else yaml")
    p.add_argument(
        "--annotations",
        action="store_true",
        help="also write each device's hwprov identity and probed chips, and what a kind needs "
        "beyond CDI, as annotations: cdiVersion 0.6.0, which CDI 0.5 runtimes (Debian 12's "
        "podman 4.3.1, containerd before 1.7.2) refuse (default: left out)",
    )
    plugin_options(p)
    p.set_defaults(func=run)


def output_format(output: str | None, chosen: str | None) -> str:
    if chosen:
        return chosen
    return SUFFIXES.get(Path(output).suffix.lower(), "yaml") if output else "yaml"


def spec_paths(output: str, classes: Sequence[str], fmt: str) -> tuple[Path, str, list[Path]]:
    """The folder, the file stem, and one file per class, as `<stem>-<class>.<format>`."""
    path = Path(output)
    if path.suffix.lower() in SUFFIXES and not output.endswith("/") and not path.is_dir():
        folder, stem = path.parent, path.stem
    else:
        folder, stem = path, STEM
    return folder, stem, [folder / f"{stem}-{cls}.{fmt}" for cls in classes]


def render(spec: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(spec, indent=2) + "\n"
    return HEADER + yaml.safe_dump(spec, sort_keys=False, width=1000)


def render_all(specs: Sequence[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(list(specs), indent=2) + "\n"
    return yaml.safe_dump_all(specs, sort_keys=False, width=1000) if specs else ""


def _ours(path: Path) -> bool:
    """A file an earlier run wrote: its kind is ours. Anything else there is left alone."""
    try:
        doc = yaml.safe_load(path.read_text())  # JSON is YAML too
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and str(doc.get("kind", "")).startswith(f"{VENDOR}/")


def write_specs(specs: Sequence[dict[str, Any]], output: str, fmt: str) -> list[Path]:
    classes = [str(s["kind"]).partition("/")[2] for s in specs]
    folder, stem, paths = spec_paths(output, classes, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    for spec, path in zip(specs, paths, strict=True):
        write_atomically(path, render(spec, fmt))
    # An unplugged kind must stop being offered: a leftover spec would name a gone device.
    for old in sorted(folder.glob(f"{stem}-*")):
        if old.suffix in SUFFIXES and old not in paths and _ours(old):
            old.unlink()
    return paths


def run(args: argparse.Namespace) -> int:
    session = scanned(args)
    print_problems(session.problems)
    annotated = build_specs(session.hardware(), session.host.grant)
    specs = annotated if args.annotations else [bare(s) for s in annotated]
    for spec in specs:
        if found := problems(spec):
            raise HwprovError(f"the {spec['kind']} spec would not load: {'; '.join(found)}")
    fmt = output_format(args.output, args.format)
    if args.output is None:
        sys.stdout.write(render_all(specs, fmt))
        return 0
    for spec, path in zip(specs, write_specs(specs, args.output, fmt), strict=True):
        names = " ".join(qualified(spec, d) for d in spec["devices"])
        print(f"wrote {path} (cdiVersion {spec['cdiVersion']}): {names}", file=sys.stderr)
    for spec in annotated:
        # Without --annotations this is the only place the flags CDI cannot carry are named.
        if flags := (spec.get("annotations") or {}).get(f"{VENDOR}/also-needs"):
            print(f"{spec['kind']} also needs on the run line: {flags}", file=sys.stderr)
    if not specs:
        print("no hardware CDI can describe: nothing written", file=sys.stderr)
    return 0
