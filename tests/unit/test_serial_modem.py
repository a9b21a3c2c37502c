"""The serial plugin's ModemManager check, rewritten for the coldplug path (a tty's properties
read key by key, not as items), says what the items-based check said on any properties."""

from __future__ import annotations

import dataclasses

from hwprov.records import Props
from hwprov_builtins import serial
from hypothesis import given, settings
from hypothesis import strategies as st
from udevdata import ftdi_tty

MM = "ID_MM_PORT_TYPE_"


def reference_owner(props: Props) -> str | None:
    """The check as it was: every (key, value) pair."""
    types = sorted(
        k.removeprefix(MM).lower() for k, v in props.items() if k.startswith(MM) and v == "1"
    )
    return f"ModemManager types it as a modem port ({', '.join(types)})" if types else None


keys = st.sampled_from(
    [f"{MM}AT_PRIMARY", f"{MM}GPS", f"{MM}QCDM", MM, "ID_MM_CANDIDATE", "DEVNAME", "ID_SERIAL"]
) | st.text(alphabet="ID_MPORTYEa", max_size=20)
values = st.sampled_from(["1", "0", "", " 1", "true"])
# Pairs, so that a key may come twice (Props keeps both; a lookup gives the first).
properties = st.lists(st.tuples(keys, values), max_size=40).map(Props)


@settings(max_examples=500, deadline=None)
@given(properties)
def test_a_port_is_the_modems_exactly_when_the_items_based_check_said_so(props: Props) -> None:
    device = dataclasses.replace(ftdi_tty(0), properties=props)
    hw = serial.hwprov_classify(device)
    assert hw is not None
    assert hw.owner == reference_owner(props)
