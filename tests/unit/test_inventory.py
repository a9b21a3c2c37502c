"""The inventory applies udev events in batches: last event per device wins."""

from __future__ import annotations

import dataclasses

from hwprov.hardware.inventory import Inventory
from hwprov.plugins.host import PluginHost
from hwprov.records import Action, UdevEvent
from udevdata import console_tty, ftdi_tty, hci, i2c_bus


def inventory() -> Inventory:
    return Inventory(PluginHost().load(eps=[]))


def test_coldplug_keeps_only_classified_hardware_in_stable_order() -> None:
    inv = inventory()
    changes = inv.load([console_tty(1), ftdi_tty(0), i2c_bus(1)])
    assert [(c.action, c.hardware.name) for c in changes] == [
        (Action.ADD, "ttyUSB0"), (Action.ADD, "i2c-1"),
    ]  # fmt: skip
    assert [h.name for h in inv.hardware()] == ["i2c-1", "ttyUSB0"]


def test_a_burst_for_one_device_costs_one_change() -> None:
    inv = inventory()
    dev = ftdi_tty(0)
    burst = [UdevEvent(Action.ADD, dev), UdevEvent(Action.REMOVE, dev), UdevEvent(Action.ADD, dev),
             UdevEvent(Action.CHANGE, dev), UdevEvent(Action.BIND, dev)]  # fmt: skip
    assert [c.action for c in inv.apply(burst)] == [Action.ADD]
    assert inv.apply([UdevEvent(Action.CHANGE, dev)]) == []  # nothing changed
    gone = [UdevEvent(Action.CHANGE, dev), UdevEvent(Action.REMOVE, dev)]
    assert [c.action for c in inv.apply(gone)] == [Action.REMOVE]
    assert inv.hardware() == []


def test_remove_of_unknown_device_is_ignored_and_change_is_reported() -> None:
    inv = inventory()
    assert inv.apply([UdevEvent(Action.REMOVE, i2c_bus(3))]) == []
    inv.load([i2c_bus(1)])
    renamed = dataclasses.replace(i2c_bus(1), node_mode=0o600)
    assert [c.action for c in inv.apply([UdevEvent(Action.CHANGE, renamed)])] == [Action.CHANGE]


def test_re_enumeration_is_a_remove_and_an_add_with_the_same_identity() -> None:
    inv = inventory()
    inv.load([ftdi_tty(0)])
    changes = inv.apply([UdevEvent(Action.REMOVE, ftdi_tty(0)), UdevEvent(Action.ADD, ftdi_tty(1))])
    assert [(c.action, c.hardware.node) for c in changes] == [
        (Action.REMOVE, "/dev/ttyUSB0"), (Action.ADD, "/dev/ttyUSB1"),
    ]  # fmt: skip
    assert changes[0].hardware.id == changes[1].hardware.id


def test_another_adapter_at_the_same_place_is_a_remove_and_an_add() -> None:
    # One USB port, one ttyUSB0, another adapter: its events merged in a burst (or lost), the
    # one granted is gone and a stranger is there, not "the same, changed".
    inv = inventory()
    inv.load([ftdi_tty(0, serial="A50285BI")])
    changes = inv.apply([UdevEvent(Action.ADD, ftdi_tty(0, serial="B7T00001"))])
    assert [(c.action, c.hardware.details["serial"]) for c in changes] == [
        (Action.REMOVE, "A50285BI"), (Action.ADD, "B7T00001"),
    ]  # fmt: skip
    assert [h.details["serial"] for h in inv.hardware()] == ["B7T00001"]


def test_resync_removes_what_is_gone_adds_what_is_new_and_changes_what_differs() -> None:
    inv = inventory()
    inv.load([ftdi_tty(0), i2c_bus(1), hci("hci0")])
    now = [
        ftdi_tty(0, serial="B7T00001"),  # another adapter took ttyUSB0
        dataclasses.replace(i2c_bus(1), node_mode=0o600),  # the same bus, changed
        i2c_bus(3),  # new
        console_tty(1),  # not hardware: no change
    ]  # hci0 is gone
    changes = inv.resync(now)
    found = [(str(c.action), c.hardware.name, c.hardware.details.get("serial")) for c in changes]
    assert sorted(found, key=str) == [
        ("add", "i2c-3", None), ("add", "ttyUSB0", "B7T00001"),
        ("change", "i2c-1", None),
        ("remove", "hci0", None), ("remove", "ttyUSB0", "A50285BI"),
    ]  # fmt: skip
    assert sorted(h.name for h in inv.hardware()) == ["i2c-1", "i2c-3", "ttyUSB0"]
    assert inv.resync(now) == []  # nothing lost since: nothing to do
