"""A container's own view of a node: its main process opens the node every millisecond and
prints the host clock (`time.time_ns()`) at each change of outcome (ENOENT: no node, EPERM:
the cgroup forbids it, ENXIO: allowed, only no driver behind the stand-in number, OPEN), so
the moment a live grant made it openable is seen from inside without a `docker exec` per try.
Figures 2 and 5 run it in the host-python image (HOSTPYTHON_TAG, HOSTPYTHON_VOLUMES)."""

from __future__ import annotations

from typing import Any

import docker

from bench.stamps import Stamps, lines_of

PROBER = """
import errno, os, sys, time
last = None
while True:
    try:
        os.close(os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK))
        state = "OPEN"
    except OSError as e:
        state = errno.errorcode.get(e.errno, str(e.errno))
    if state != last:
        print(time.time_ns(), state, flush=True)
        last = state
    time.sleep(0.001)
"""


def command(node: str) -> list[str]:
    return ["python3", "-c", PROBER, node]


def node_states(api: docker.APIClient, container: str) -> tuple[Stamps, Any]:
    """The prober's transitions, and the log stream to close when done."""
    stream = api.logs(container, stream=True, follow=True)
    return Stamps(lines_of(stream), "bench-prober"), stream
