"""The docs keep up with the code: every hook is documented, with a docstring and in docs/."""

from __future__ import annotations

import inspect
from pathlib import Path

from agent import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"


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
