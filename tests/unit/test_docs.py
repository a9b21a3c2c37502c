"""The docs keep up with the code: every hook and every command is documented in docs/."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

from hwprov.commands.main import build_parser
from hwprov.plugins import hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def hook_names() -> list[str]:
    return [
        n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("hwprov_")
    ]


def test_there_are_hooks_to_check() -> None:
    assert len(hook_names()) >= 6


def test_every_hook_has_a_docstring_and_a_row_in_the_plugin_guide() -> None:
    guide = (DOCS / "hooks.md").read_text()
    for name in hook_names():
        spec = getattr(hookspecs, name)
        assert (spec.__doc__ or "").strip(), f"{name} has no docstring"
        assert f"`{name}(" in guide, f"{name} is not documented in docs/hooks.md"


def leaf_commands() -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs and prefix:
            found[prefix.strip()] = parser
        for action in subs:
            for name, child in action.choices.items():
                walk(child, f"{prefix}{name} ")

    walk(build_parser(), "")
    return found


def test_every_command_has_help_an_example_and_a_place_in_the_cli_docs() -> None:
    commands = leaf_commands()
    assert {"scan", "plan", "apply", "migrate", "run", "sim plug"} <= set(commands)
    reference = (DOCS / "cli.md").read_text()
    helps = {
        name: choice.help
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
        for name in [choice.dest]
    }
    for name, parser in commands.items():
        epilog = parser.epilog or ""
        assert epilog.startswith(f"example: hwprov {name}"), f"{name}: no example in --help"
        assert f"`hwprov {name}`" in reference or f"`hwprov {name}`," in reference, name
        assert epilog.removeprefix("example: ") in reference, f"{name}: example not in cli.md"
        top = name.split()[0]
        assert helps.get(top), f"{top}: no one-line help"


def test_every_error_in_troubleshooting_is_one_hwprov_really_prints() -> None:
    source = "".join(
        p.read_text() for folder in ("agent", "plugins") for p in (ROOT / folder).rglob("*.py")
    )
    headings = re.findall(r"^### `([^`]+)`", (DOCS / "troubleshooting.md").read_text(), re.M)
    assert len(headings) >= 10
    for message in headings:
        assert message in source, f"troubleshooting.md: hwprov never prints {message!r}"
