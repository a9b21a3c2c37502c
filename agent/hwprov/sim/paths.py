"""Where the simulator finds its board descriptions.

The boards ship with hwprov as the package `hwprov.boards`, whose source folder is the
checkout's `hw-fixtures/` (pyproject.toml maps it): an installed wheel reads them from
site-packages, an editable install from the checkout, through the same lookup. HWPROV_FIXTURES
names another folder, for boards of one's own.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from hwprov.errors import SimulatorError

BOARDS_PACKAGE = "hwprov.boards"


def fixtures_dir() -> Path:
    """The folder of board descriptions; HWPROV_FIXTURES overrides it for out-of-tree boards."""
    if override := os.environ.get("HWPROV_FIXTURES"):
        return Path(override)
    try:
        boards = resources.files(BOARDS_PACKAGE)
    except ModuleNotFoundError:  # hwprov copied without its package data (not by pip)
        raise SimulatorError(
            f"the fixture boards ({BOARDS_PACKAGE}) are not installed: reinstall hwprov with "
            "pip, or set HWPROV_FIXTURES"
        ) from None
    # The simulator hands a board's path to its re-executed child, so it needs a real folder,
    # not a zip member.
    if not isinstance(boards, Path):
        raise SimulatorError(
            f"the fixture boards are not a folder ({boards}): install hwprov unzipped, "
            "or set HWPROV_FIXTURES"
        )
    return boards
