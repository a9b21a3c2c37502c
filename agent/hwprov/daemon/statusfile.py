"""The status file: `hwprov run` replaces it whole at each heartbeat, `hwprov status` reads it.

A file rather than a query socket: a reader needs nothing from the agent to run (a wedged
agent cannot hang a health check, and a dead one still leaves its last words), the write is
one rename (no reader sees half a file), and the heartbeat's age tells a live agent from a
wedged one without the agent having to answer anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hwprov.daemon.state import AgentState, StatusError

DEFAULT = Path("/run/hwprov/status.json")


def publish(path: Path, state: AgentState) -> None:
    """Write `state` aside, then rename it over `path` (its folder made if need be).
    OSError when the folder cannot be made or written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(state.to_json(), indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read(path: Path) -> AgentState | None:
    """The state at `path`; None when there is no file. StatusError when it cannot be read or
    is not a status document."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StatusError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise StatusError(f"{path}: not JSON ({err})") from None
    return AgentState.from_json(doc, str(path))


def pid_namespace() -> int | None:
    """This process's pid namespace (the inode of its /proc/self/ns/pid), None if unreadable."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def alive(state: AgentState) -> bool | None:
    """Whether the agent's pid is a live process; None when this reader cannot tell (it runs
    in another pid namespace, where that number means another process or none)."""
    here = pid_namespace()
    if here is None or state.pid_namespace is None or here != state.pid_namespace:
        return None
    try:
        stat = Path(f"/proc/{state.pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead too
