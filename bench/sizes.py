"""How big each benchmark runs: the full sizes of issue 7, --quick, and the smoke test's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    plugs: int = 50  # figure 1: plug/unplug cycles per network mode
    compose_samples: int = 20  # figure 2: compose recreates per mode (first cycles of fig. 1)
    settle_ms: float = 100.0  # hwprov run --settle-ms where it does not touch the measurement
    storm_rate: float = 1000.0  # figure 3: uevents per second ...
    storm_seconds: float = 5.0  # ... for this long ...
    storm_devices: int = 20  # ... across this many adapters ...
    storm_services: int = 10  # ... matched by this many services (two adapters each)
    storm_quiet_s: float = 3.0  # the state must hold this long, hwprov silent, to count as final
    scale_devices: tuple[int, ...] = (100, 1000, 5000)  # figure 4
    scale_services: tuple[int, ...] = (10, 100)
    scale_repeat: int = 3
    live_plugs: int = 50  # figure 5
    idle_seconds: float = 60.0  # figure 6


FULL = Sizes()
QUICK = Sizes(
    plugs=10,
    compose_samples=5,
    storm_seconds=2.0,
    scale_devices=(100, 1000),
    live_plugs=10,
    idle_seconds=10.0,
)
SMOKE = Sizes(
    plugs=3,
    compose_samples=1,
    settle_ms=50.0,
    storm_rate=100.0,
    storm_seconds=0.5,
    storm_devices=4,
    storm_services=2,
    storm_quiet_s=1.0,
    scale_devices=(10, 20),
    scale_services=(2, 4),
    scale_repeat=1,
    live_plugs=3,
    idle_seconds=2.0,
)
PRESETS = {"full": FULL, "quick": QUICK, "smoke": SMOKE}
