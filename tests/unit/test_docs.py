"""The docs keep up with the code: every hook and every command is documented in docs/."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
from pathlib import Path

import pytest
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


def _hwprov_imports(source: str) -> list[tuple[str, str]]:
    """(module, name) of every `from hwprov... import name` in the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hwprov"):
            found += [(node.module or "", a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("hwprov")]
    return found


PLUGIN_SOURCES = [
    *sorted((ROOT / "plugins" / "hwprov_builtins").glob("*.py")),
    ROOT / "tests" / "plugins" / "hwprov-spidev" / "hwprov_spidev" / "__init__.py",
]


@pytest.mark.parametrize("path", PLUGIN_SOURCES, ids=lambda p: p.parent.name + "/" + p.name)
def test_plugins_use_only_the_public_plugin_api(path: Path) -> None:
    import hwprov.plugins

    for module, name in _hwprov_imports(path.read_text()):
        assert module == "hwprov.plugins", f"{path.name} imports {module}"
        assert name in hwprov.plugins.__all__, f"{path.name} uses {name}, not in the API"


def test_the_plugin_docs_examples_use_only_the_public_plugin_api() -> None:
    import hwprov.plugins

    text = (DOCS / "hooks.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    documented = set(re.findall(r"`(\w+)`", text.split("## The plugin API")[1].split("\n## ")[0]))
    assert set(hwprov.plugins.__all__) <= documented  # every public name is in the table
    for block in blocks:
        imports = _hwprov_imports(block)
        assert imports and {m for m, _ in imports} == {"hwprov.plugins"}, block
        assert {n for _, n in imports} <= set(hwprov.plugins.__all__)


def test_every_outcome_action_is_documented() -> None:
    from hwprov.containers.outcome import OutcomeAction

    text = (DOCS / "json.md").read_text()
    assert [a for a in OutcomeAction if f"`{a}`" not in text] == []
