"""Hardware-in-the-loop scenarios, written against the Bench interface: the same tests run on
every simulated fixture board here and on a real board in a lab (`--bench real`)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import Hil
from hilkit import SERVICE_OF_KIND, Agent, compose, leftovers, name, view, wait_for

from lab.bench import Unit

SERIAL = name("serial")


def units(hil: Hil, kind: str | None = None, at_boot: bool | None = None) -> list[Unit]:
    return [
        u
        for u in hil.bench.units().values()
        if (kind is None or u.kind == kind) and (at_boot is None or u.at_boot == at_boot)
    ]


def attached(hil: Hil, kind: str) -> list[str]:
    """What hwprov classifies as attached now, units or not."""
    out = hil.bench.run(["hwprov", "scan", "--json"])
    assert out.returncode == 0, out.stderr
    return [h["id"] for h in json.loads(out.stdout)["hardware"] if h["kind"] == kind]


def has_nodes(hil: Hil, service: str, nodes: list[str]) -> bool:
    """The service runs and sees each node with the numbers the bench gave it."""
    v = view(hil.client, name(service))
    if v is None or not v.running or v.privileged:
        return False
    return all(v.nodes.get(n) == hil.bench.engine_numbers(n) for n in nodes)


def lacks_nodes(hil: Hil, service: str, nodes: list[str]) -> bool:
    v = view(hil.client, name(service))
    return v is not None and v.running and not set(nodes) & set(v.nodes)


def settled(hil: Hil) -> bool:
    return not leftovers(hil.client)


# -- the scenarios ---------------------------------------------------------------------------


def test_cold_boot_with_everything_attached(hil: Hil) -> None:
    agent = hil.up(all_attached=True)
    waited = wait_for(lambda: agent.count("started") == 1)
    assert waited is not None, agent.log.read_text()
    for unit in units(hil):
        if not unit.nodes:
            continue
        service = SERVICE_OF_KIND[unit.kind]
        took = wait_for(lambda s=service, n=list(unit.nodes): has_nodes(hil, s, n))
        assert took is not None, f"{unit.id}: {view(hil.client, name(service))}"
        hil.record(f"coldplug {unit.id}", took)
    assert wait_for(lambda: settled(hil)) is not None
    assert agent.count("rolled-back") == 0


def test_hot_plug_of_each_device_kind(hil: Hil) -> None:
    pluggable = [u for u in units(hil, at_boot=False) if u.nodes]
    if not pluggable:
        pytest.skip(f"{hil.bench.name} has no hot-pluggable unit with a node")
    agent = hil.up(kinds={u.kind for u in pluggable})
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    seen = set()
    for unit in pluggable:
        if unit.kind in seen:
            continue  # one unit per kind; the storm plugs them all
        seen.add(unit.kind)
        service = SERVICE_OF_KIND[unit.kind]
        nodes = hil.bench.plug(unit.id)
        took = wait_for(lambda s=service, n=nodes: has_nodes(hil, s, n))
        assert took is not None, f"{unit.id}: {view(hil.client, name(service))}"
        hil.record(f"plug {unit.id}", took)
        hil.bench.unplug(unit.id)
        gone = wait_for(lambda s=service, n=nodes: lacks_nodes(hil, s, n))
        assert gone is not None, f"{unit.id} still mapped after unplug"
        hil.record(f"unplug {unit.id}", gone)
    assert wait_for(lambda: settled(hil)) is not None
    assert agent.count("rolled-back") == 0


def test_unplug_during_a_recreate_converges_with_nothing_lost(hil: Hil) -> None:
    serial = [u for u in units(hil, "serial", at_boot=False)]
    if not serial:
        pytest.skip(f"{hil.bench.name} has no hot-pluggable serial adapter")
    agent = hil.up(kinds=("serial",))
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    hil.client.api.exec_start(
        hil.client.api.exec_create(SERIAL, ["sh", "-c", "echo kept > /data/x"])
    )
    unit = serial[0]
    nodes = hil.bench.plug(unit.id)
    # Pulled again while hwprov is swapping the container in (its `add` is the cue).
    assert wait_for(lambda: agent.count("add") >= 1, timeout=10) is not None
    hil.bench.unplug(unit.id)
    took = wait_for(
        lambda: agent.caught_up("remove") and lacks_nodes(hil, "serial", nodes) and settled(hil)
    )
    assert took is not None, agent.log.read_text()
    hil.record(f"plug+unplug {unit.id} settled", took)
    out = hil.client.api.exec_start(hil.client.api.exec_create(SERIAL, ["cat", "/data/x"]))
    assert out == b"kept\n", agent.log.read_text()[-4000:]  # the volume came through every swap
    assert len(hil.client.api.containers(all=True, filters={"name": SERIAL})) == 1


def test_usb_re_enumeration_to_a_new_node_is_followed(hil: Hil) -> None:
    serial = [u for u in units(hil, "serial", at_boot=False) if u.nodes]
    if len(serial) < 2:
        pytest.skip(f"{hil.bench.name} needs two hot-pluggable serial adapters")
    first, other = serial[0], serial[1]
    agent = hil.up(kinds=("serial",))
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    alone = hil.bench.plug(first.id)
    assert wait_for(lambda: has_nodes(hil, "serial", alone)) is not None
    hil.bench.unplug(first.id)
    held = hil.bench.plug(other.id)  # takes the first adapter's number ...
    again = hil.bench.plug(first.id)  # ... so it comes back under another one
    assert set(again) != set(alone) and set(held) == set(alone)
    took = wait_for(lambda: has_nodes(hil, "serial", held + again) and settled(hil))
    assert took is not None, f"{view(hil.client, SERIAL)} want {held + again}"
    hil.record(f"re-enumerated {first.id} {alone} -> {again}", took)
    v = view(hil.client, SERIAL)
    assert v is not None and set(alone) <= set(v.nodes)  # the old name is the other one now


def test_a_sensor_appearing_on_a_mapped_bus(hil: Hil) -> None:
    slot = hil.bench.i2c_slot()
    if slot is None:
        pytest.skip(f"{hil.bench.name} has no bus where a chip can be added")
    bus = f"/dev/i2c-{slot.bus}"
    # A second service wants that sensor specifically: it has nothing until it answers.
    extra = (
        f'  weather:\n    image: {hil.image}\n    command: ["sleep", "3600"]\n    init: true\n'
        f'    labels:\n      io.hwprov.device.sensor: "sensor={slot.model}, optional"\n'
    )
    agent = hil.up(extra=extra, kinds=("i2c",))
    assert wait_for(lambda: has_nodes(hil, "i2c", [bus])) is not None
    assert wait_for(lambda: lacks_nodes(hil, "weather", [bus])) is not None
    i2c_id = view(hil.client, name("i2c")).id  # type: ignore[union-attr]
    hil.bench.i2c_add(slot)
    took = wait_for(lambda: has_nodes(hil, "weather", [bus]))
    assert took is not None, agent.log.read_text()
    hil.record(f"sensor {slot.model}@0x{slot.address:02x} on {bus}", took)
    # The service that already had the bus talks to the new chip as it is: not recreated.
    assert view(hil.client, name("i2c")).id == i2c_id  # type: ignore[union-attr]
    hil.bench.i2c_remove(slot)
    assert wait_for(lambda: lacks_nodes(hil, "weather", [bus])) is not None


def test_a_bluetooth_adapter_coming_and_going(hil: Hil) -> None:
    dongles = units(hil, "bluetooth", at_boot=False)
    if not dongles:
        pytest.skip(f"{hil.bench.name} has no pluggable Bluetooth adapter")
    agent = hil.up(kinds=("bluetooth",))
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    onboard = bool(attached(hil, "bluetooth"))  # a unit at boot, or the board's own (a Pi's)
    bt = name("bluetooth")
    adds = agent.count("add")
    t0 = time.monotonic()
    hil.bench.plug(dongles[0].id)
    assert wait_for(lambda: agent.count("add") > adds) is not None
    ready = wait_for(lambda: (v := view(hil.client, bt)) is not None and v.running
                     and "NET_ADMIN" in v.caps)  # fmt: skip
    assert ready is not None, view(hil.client, bt)
    # From the plug request: the plug itself is synchronous and often outruns the first check.
    hil.record(f"plug {dongles[0].id} -> service with NET_ADMIN", time.monotonic() - t0)
    assert wait_for(lambda: settled(hil)) is not None
    v = view(hil.client, bt)
    assert v is not None and v.network == "host" and not v.privileged
    hil.bench.unplug(dongles[0].id)
    assert wait_for(lambda: agent.count("remove") >= 1) is not None
    # With an adapter left on board the grant stays; without, the capability goes.
    want = onboard
    assert wait_for(lambda: (v := view(hil.client, bt)) is not None and v.running
                    and ("NET_ADMIN" in v.caps) == want and settled(hil)) is not None  # fmt: skip


def test_a_plug_storm_from_a_hub_ends_exactly_right(hil: Hil) -> None:
    pluggable = [u for u in units(hil, at_boot=False) if u.nodes]
    if len(pluggable) < 2:
        pytest.skip(f"{hil.bench.name} has fewer than two hot-pluggable units")
    agent = hil.up(kinds={u.kind for u in pluggable})
    assert wait_for(lambda: agent.count("reconciled") >= 1) is not None
    assert wait_for(lambda: settled(hil)) is not None
    at_start = agent.count("recreated")  # the first pass gives the board's own hardware
    before = {}  # and what each service has of it (a Pi's own UARTs)
    for service in {SERVICE_OF_KIND[u.kind] for u in pluggable}:
        v = view(hil.client, name(service))
        before[service] = set(v.nodes) if v is not None else set()
    got: dict[str, list[str]] = {}

    def plug(unit: Unit) -> None:
        got[unit.id] = hil.bench.plug(unit.id)

    threads = [threading.Thread(target=plug, args=(u,)) for u in pluggable]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    want: dict[str, list[str]] = {}
    for unit in pluggable:
        want.setdefault(SERVICE_OF_KIND[unit.kind], []).extend(got[unit.id])
    took = wait_for(
        lambda: all(has_nodes(hil, s, n) for s, n in want.items()) and settled(hil), timeout=60
    )
    assert took is not None, {s: view(hil.client, name(s)) for s in want}
    recreates = agent.count("recreated") - at_start
    hil.record(f"storm of {len(pluggable)} units", took, recreates=recreates)
    assert agent.count("rolled-back") == 0
    # Batched: fewer recreates than units per service would take one at a time, never more.
    assert recreates <= len(pluggable)
    for service, nodes in want.items():  # exactly: nothing more than what was plugged
        v = view(hil.client, name(service))
        assert v is not None and set(v.nodes) == before[service] | set(nodes), service


def test_a_service_migrated_off_privileged_keeps_working(hil: Hil) -> None:
    legacy = (
        f'services:\n  legacy:\n    image: {hil.image}\n    command: ["sleep", "3600"]\n'
        "    init: true\n    privileged: true\n"
    )
    hil.bench.boot(all_attached=True)
    hil.compose_file = hil.workdir / "docker-compose.yml"
    hil.compose_file.write_text(legacy)
    there = hil.bench.put(hil.compose_file)
    planned = hil.bench.run(["hwprov", "plan", "--json", "-f", there])
    assert planned.returncode == 0, planned.stderr
    before = {d["host"] for d in json.loads(planned.stdout)["services"][0]["devices"]}
    migrated = hil.bench.run(["hwprov", "migrate", "--write", "-f", there])
    assert migrated.returncode == 0, migrated.stderr
    hil.bench.get(there, hil.compose_file)
    assert "privileged" not in hil.compose_file.read_text().replace("was privileged", "")
    compose(hil.bench, hil.compose_file, "up", "-d")
    hil.agent = Agent.start(hil.bench, hil.compose_file)
    took = wait_for(lambda: has_nodes(hil, "legacy", sorted(before)) and settled(hil))
    assert took is not None, (before, view(hil.client, name("legacy")))
    hil.record(f"migrated service got {len(before)} nodes", took)
    v = view(hil.client, name("legacy"))
    assert v is not None and not v.privileged and set(v.nodes) == before
