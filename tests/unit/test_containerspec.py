"""The clone changes only hardware fields: exact create payloads, from inspect documents."""

from __future__ import annotations

import copy

from hwprov.containers.spec import clone_payload, differences, wanted
from hwprov.planning.plan import PlannedDevice, PlannedMount, ServicePlan, Setting

OLD_ID = "0123456789abcdef0123456789abcdef"
INSPECT = {
    "Id": OLD_ID,
    "Name": "/demo-gps-1",
    "State": {"Running": True},
    "Config": {
        "Image": "hwprov/busybox:latest",
        "Cmd": ["sh", "-c", "sleep 1d"],
        "Env": ["PATH=/bin", "MODE=prod"],
        "Labels": {"com.docker.compose.project": "demo", "com.docker.compose.service": "gps"},
        "StopSignal": "SIGINT",
        "StopTimeout": 3,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
    },
    "HostConfig": {
        "Binds": ["data:/data"],
        "NetworkMode": "demo_default",
        "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
        "Privileged": True,
        "CapAdd": ["NET_ADMIN"],
        "Devices": [],
        "GroupAdd": None,
        "Init": True,
    },
    "NetworkSettings": {
        "Networks": {
            "demo_default": {"Aliases": ["gps", OLD_ID[:12]], "IPAMConfig": None},
            "backend": {"Aliases": ["gps"], "IPAMConfig": {"IPv4Address": "172.30.0.9"}},
        }
    },
}

PLAN = ServicePlan(
    service="gps",
    devices=(PlannedDevice("/dev/ttyUSB0", "/dev/gps", "rw", 188, 0, "serial:x", "label"),),
    capabilities=(Setting("NET_ADMIN", "declared"),),
    group_add=(Setting("20", "node group"),),
    mounts=(PlannedMount("/run/dbus", "/host/run/dbus", False, "dbus"),),
    env=(Setting("DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket", "dbus"),),
)


def test_clone_keeps_everything_but_the_hardware_fields() -> None:
    before = copy.deepcopy(INSPECT)
    spec = wanted(PLAN, lambda p: "/tmp/sim/nodes" + p.removeprefix("/dev"))
    body, extra = clone_payload(INSPECT, spec)
    assert before == INSPECT  # the inspect document is not modified
    assert body == {
        "Image": "hwprov/busybox:latest",
        "Cmd": ["sh", "-c", "sleep 1d"],
        "Env": [
            "PATH=/bin",
            "MODE=prod",
            "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket",
        ],
        "Labels": {"com.docker.compose.project": "demo", "com.docker.compose.service": "gps"},
        "StopSignal": "SIGINT",
        "StopTimeout": 3,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000},
        "HostConfig": {
            "Binds": ["data:/data", "/run/dbus:/host/run/dbus"],
            "NetworkMode": "demo_default",
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
            "Privileged": False,
            "CapAdd": ["NET_ADMIN"],
            "Devices": [
                {
                    "PathOnHost": "/tmp/sim/nodes/ttyUSB0",
                    "PathInContainer": "/dev/gps",
                    "CgroupPermissions": "rw",
                }
            ],
            "GroupAdd": ["20"],
            "Init": True,
        },
        # the network the create call attaches is NetworkMode's; the old short-id alias is dropped
        "NetworkingConfig": {"EndpointsConfig": {"demo_default": {"Aliases": ["gps"]}}},
    }
    assert extra == [("backend", {"Aliases": ["gps"], "IPAMConfig": {"IPv4Address": "172.30.0.9"}})]


def test_differences_name_each_changed_field_and_nothing_when_equal() -> None:
    spec = wanted(PLAN)
    diff = differences(INSPECT, spec)
    assert [d.split(":")[0] for d in diff] == ["Privileged", "Devices", "GroupAdd", "Binds", "Env"]
    body, _ = clone_payload(INSPECT, spec)
    created = {
        "Config": {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")},
        "HostConfig": body["HostConfig"],
    }
    assert differences(created, spec) == []


def test_host_network_drops_endpoints_and_capabilities_compare_without_prefix() -> None:
    spec = wanted(ServicePlan("bt", network_mode=Setting("host", "bluetooth")))
    body, extra = clone_payload(INSPECT, spec)
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert body["NetworkingConfig"] is None and extra == []
    attrs = {"HostConfig": {"CapAdd": ["CAP_NET_ADMIN"], "NetworkMode": "host"}, "Config": {}}
    assert (
        differences(attrs, wanted(ServicePlan("x", capabilities=(Setting("NET_ADMIN", ""),)))) == []
    )


def test_a_removed_device_and_capability_are_dropped_exactly() -> None:
    attrs = copy.deepcopy(INSPECT)
    attrs["HostConfig"].update(
        Privileged=False,
        CapAdd=["SYS_RAWIO"],
        Devices=[
            {"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem", "CgroupPermissions": "rw"}
        ],
    )
    spec = wanted(ServicePlan("x"))
    body, _ = clone_payload(attrs, spec)
    assert body["HostConfig"]["Devices"] == [] and body["HostConfig"]["CapAdd"] is None
    assert differences(attrs, spec)[:2] == [
        "Devices: [('/dev/mem', '/dev/mem', 'rw')] -> []",
        "CapAdd: ['SYS_RAWIO'] -> []",
    ]
