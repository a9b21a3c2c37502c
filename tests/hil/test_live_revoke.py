"""A live revoke beside a recreate: the adapter a live `logger` holds is also one of the
`serial` service's, so every plug and unplug recreates `serial` in the same pass. The kernel
bench found the logger's revoke queued behind that pass (13.6 s on cgroup v2, 16.5 s on v1,
against 1.1-1.6 s alone); the revoker takes the node as the remove is read (daemon/revoker.py).
Recorded per bench with the path that took it; tests/engine/test_live_revoke.py proves the
order against a pass held on purpose."""

from __future__ import annotations

import time

import pytest
from conftest import Hil
from hilkit import LOOP, name, node_numbers, wait_for


def test_a_live_revoke_does_not_wait_for_the_recreate_beside_it(hil: Hil) -> None:
    serial = [u for u in hil.bench.units().values() if u.kind == "serial" and not u.at_boot]
    if not serial or not serial[0].nodes:
        pytest.skip(f"{hil.bench.name} has no hot-pluggable serial adapter")
    unit = serial[0]
    extra = (
        f"  logger:\n    image: {hil.image}\n    command: {LOOP}\n    init: true\n"
        "    network_mode: none\n"
        "    labels:\n      io.hwprov.grant: live\n"
        '      io.hwprov.device.gps: "kind=serial, by-id=usb-*, optional, path=/dev/gps"\n'
    )
    agent = hil.up(extra=extra, kinds=("serial",))
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    logger = name("logger")
    first = hil.client.api.inspect_container(logger)

    def recreated() -> int:
        return agent.count("recreated", service="serial")

    before = recreated()  # the serial service may have been recreated at start already
    # Timed from the bench's request: its plug and unplug return once the guest's udev has
    # settled, by which time the node may well have changed already.
    asked = time.monotonic()
    nodes = hil.bench.plug(unit.id)
    want = hil.bench.engine_numbers(nodes[0])
    assert wait_for(lambda: node_numbers(hil.client, logger, "/dev/gps") == want) is not None, (
        agent.log.read_text()[-3000:]
    )
    hil.record(
        f"live plug {unit.id} beside serial's recreate -> /dev/gps", time.monotonic() - asked
    )
    assert wait_for(lambda: recreated() > before) is not None  # the unplug's pass is its own
    before = recreated()

    asked = time.monotonic()
    hil.bench.unplug(unit.id)
    gone = wait_for(lambda: node_numbers(hil.client, logger, "/dev/gps") != want)
    assert gone is not None, agent.log.read_text()[-3000:]
    revoked = [d for d in agent.decisions() if d["event"] == "revoked"]
    by = "revoker" if revoked else "pass"
    step = f"live unplug {unit.id} beside serial's recreate -> /dev/gps gone (by the {by})"
    hil.record(step, time.monotonic() - asked)
    if revoked:  # the revoker's own time, from the remove uevent off the socket
        hil.record(
            "  uevent -> revoked (uevent_to_revoke_ms)", revoked[0]["uevent_to_revoke_ms"] / 1e3
        )
    # serial is recreated without the adapter; the logger's process was never touched
    assert wait_for(lambda: recreated() > before) is not None, [
        (d["event"], d.get("service"), d.get("detail")) for d in agent.decisions()
    ]
    now = hil.client.api.inspect_container(logger)
    assert (now["Id"], now["State"]["StartedAt"]) == (first["Id"], first["State"]["StartedAt"])
    assert agent.count("recreated", service="logger") == 0
