"""Where the metrics endpoint listens: the setting's one parser (pure), kept apart from the
server so that reading the settings does not import the Prometheus client library: an agent
without metrics never loads it (daemon/metricsserver.py does, when asked)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

UNIX_PREFIX = "unix:"


@dataclass(frozen=True, slots=True)
class Listen:
    """Where to serve: a unix socket `path`, or `host` and `port`."""

    host: str = "127.0.0.1"
    port: int = 0
    path: Path | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return f"{UNIX_PREFIX}{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """`unix:/run/hwprov/metrics.sock`, `127.0.0.1:9108`, `[::1]:9108` or `9108` (localhost);
    port 0 is any free one (the status file says which). ValueError says what is wrong."""
    if text.startswith(UNIX_PREFIX) or text.startswith("/"):
        path = Path(text.removeprefix(UNIX_PREFIX))
        if not path.is_absolute():
            raise ValueError(f"a unix socket needs an absolute path, got {text!r}")
        return Listen(path=path)
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if sep else "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:  # 0: a free port the kernel picks
        raise ValueError(f"expected unix:PATH, HOST:PORT or PORT, got {text!r}")
    return Listen(host=host or "127.0.0.1", port=int(port))
