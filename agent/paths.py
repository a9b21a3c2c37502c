"""Where hwprov finds the files it ships beside its code."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    """The folder of board descriptions; HWPROV_FIXTURES overrides it for out-of-tree boards."""
    return Path(os.environ.get("HWPROV_FIXTURES", REPO_ROOT / "hw-fixtures"))
