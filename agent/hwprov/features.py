"""balena's feature labels (`io.balena.features.*`): what each gives a container.

The supervisor's own table (src/compose/utils.ts, addFeaturesFromLabels), kept in one place:
the planner gives the same access on a plain Docker host, the bluetooth plugin asks for the
host D-Bus the way balena gives it, and CDI specs carry the same mount and variable, so one
image works under `hwprov apply`, on the supervisor and under CDI alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwprov.records import Mount, Props

LABEL_PREFIX = "io.balena.features."


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    mounts: tuple[Mount, ...]
    env: Props = field(default_factory=Props)

    @property
    def label(self) -> str:
        return LABEL_PREFIX + self.name


# A directory, not the socket file: bluetoothd and dbus restarts replace the socket.
DBUS = Feature(
    "dbus",
    (Mount("/run/dbus", "/host/run/dbus"),),
    Props({"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/host/run/dbus/system_bus_socket"}),
)
FEATURES = {
    f.name: f
    for f in (
        DBUS,
        Feature("sysfs", (Mount("/sys", "/sys"),)),
        Feature("procfs", (Mount("/proc", "/proc"),)),
        Feature("kernel-modules", (Mount("/lib/modules", "/lib/modules", read_only=True),)),
        Feature("firmware", (Mount("/lib/firmware", "/lib/firmware", read_only=True),)),
    )
}
