"""A container as the balena supervisor creates it, for tests and benchmarks of the cgroup
strategy: its name pattern and the labels hwprov reads to know who owns it."""

from __future__ import annotations

NAME = "gps_1234_5678_0123456789abcdef"  # <service>_<imageId>_<releaseId>_<commit>
LABELS = {
    "io.balena.supervised": "true",
    "io.balena.service-name": "gps",
    "io.balena.app-id": "1",
    "io.balena.service-id": "2",
    "io.balena.app-uuid": "abc",
}
