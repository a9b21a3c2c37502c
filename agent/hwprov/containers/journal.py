"""The journal of a swap in flight, kept in container names instead of a state file.

`<name>.hwprov-new` is a replacement not yet swapped in, `<name>.hwprov-old` the original kept
until its replacement has proved itself, and a `-running` ending on either says the original
was running before the swap, so recovery knows whether to start what it puts back. A hwprov
killed at any step is recovered by the next run from the engine alone.
"""

from __future__ import annotations

NEW_SUFFIX = ".hwprov-new"
OLD_SUFFIX = ".hwprov-old"
RUNNING = "-running"
TEMP_ENDINGS = (NEW_SUFFIX, OLD_SUFFIX, NEW_SUFFIX + RUNNING, OLD_SUFFIX + RUNNING)


def in_flight(name: str) -> bool:
    """A name that only a swap in progress gives."""
    return name.endswith(TEMP_ENDINGS)


def old_name(name: str, was_running: bool) -> str:
    return name + OLD_SUFFIX + (RUNNING if was_running else "")


def new_name(name: str, was_running: bool) -> str:
    return name + NEW_SUFFIX + (RUNNING if was_running else "")


def parse(name: str) -> tuple[str, str, bool] | None:
    """`(base name, "new" or "old", was running)` for a journal name, else None."""
    for ending in TEMP_ENDINGS:
        if name.endswith(ending):
            role = "new" if ending.startswith(NEW_SUFFIX) else "old"
            return name.removesuffix(ending), role, ending.endswith(RUNNING)
    return None
