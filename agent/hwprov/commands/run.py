"""`hwprov run`: the daemon, with its settings resolved and its signals wired."""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hwprov.commands.options import (
    Subparsers,
    compose_options,
    grant_option,
    plugin_options,
    status_file_option,
    unplug_option,
)
from hwprov.daemon.config import DEFAULT_FILE, resolve
from hwprov.daemon.decisions import LOG_FORMATS, Decisions, logs_as_decisions
from hwprov.daemon.listen import parse_listen
from hwprov.daemon.loop import Daemon
from hwprov.daemon.report import Report
from hwprov.errors import HwprovError
from hwprov.threads import SignalWake

if TYPE_CHECKING:
    from hwprov.daemon.metrics import Metrics

log = logging.getLogger(__name__)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "run",
        help="the agent: follow hardware and compose changes, keep containers matching",
        description="Coldplug scan, reconcile, then handle hotplug events (re-plan, recreate "
        "only the affected services), compose file edits and container starts. SIGHUP reloads "
        "the compose file and enumerates the hardware again, SIGTERM stops. One line per "
        "decision on stderr, log records included. Settings come from "
        "the defaults, then the config file, then HWPROV_* variables, then these options "
        "(docs/config.md).",
        epilog="example: hwprov run -f /data/docker-compose.yml --debounce-ms 0",
    )
    p.add_argument("--config", type=Path, help=f"settings file (default: {DEFAULT_FILE} if any)")
    compose_options(p, default=None)
    p.add_argument("--engine", help="engine socket URL (default: $DOCKER_HOST or the local socket)")
    plugin_options(p, probe=False)
    p.add_argument(
        "--debounce-ms",
        type=float,
        help="extra wait to gather a burst after its first event (default 0)",
    )
    unplug_option(p, default=None)
    grant_option(p)
    p.add_argument(
        "--settle-ms",
        type=float,
        help="how long a replacement must stay up before the original is removed (default 500)",
    )
    p.add_argument("--log-format", choices=LOG_FORMATS, help="json (default) or text lines")
    status_file_option(p)
    p.add_argument(
        "--metrics-listen",
        metavar="ADDRESS",
        help="serve Prometheus metrics at /metrics on HOST:PORT, PORT (127.0.0.1) or "
        "unix:PATH (default: none)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = resolve(
        args.config,
        {
            "compose_file": args.file,
            "project": args.project_name,
            "engine": args.engine,
            "disable": tuple(args.disable or ()),
            "debounce_ms": args.debounce_ms,
            "settle_ms": args.settle_ms,
            "on_unplug": args.on_unplug,
            "grant": args.grant,
            "log_format": args.log_format,
            "status_file": args.status_file,
            "metrics_listen": args.metrics_listen,
        },
    )
    emit = Decisions(config.log_format)
    metrics = None
    if config.metrics_listen:  # the client library is loaded only when metrics are asked for
        from hwprov.daemon.metrics import Metrics

        metrics = Metrics()
    daemon = Daemon(
        compose_file=config.compose_file,
        project=config.project,
        engine_url=config.engine,
        disabled=config.disable,
        debounce_s=config.debounce_ms / 1000,
        settle_s=config.settle_ms / 1000,
        on_unplug=config.on_unplug,
        grant=config.grant,
        udev_buffer=config.udev_buffer_kib * 1024,
        emit=emit,
        report=Report(config.status_file, metrics, default_unplug=config.on_unplug),
    )
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop())
    signal.signal(signal.SIGHUP, lambda *_: daemon.reload())
    # One stream per format: from here on, errors and log records are decision lines too.
    with logs_as_decisions(emit), SignalWake(daemon.nudge):
        try:
            with serving(config.metrics_listen, metrics) as where:
                daemon.report.metrics_at = where  # with the port the kernel chose for 0
                return daemon.run()
        except HwprovError as err:
            emit("error", error=str(err))
            return 2
        except Exception:
            log.critical("hwprov run failed", exc_info=True)
            return 1


@contextmanager
def serving(listen: str | None, metrics: Metrics | None) -> Iterator[str | None]:
    """The metrics endpoint while the daemon runs, and where it listens (None: not asked)."""
    if listen is None or metrics is None:
        yield None
        return
    from hwprov.daemon.metricsserver import MetricsServer

    server = MetricsServer(parse_listen(listen), metrics.registry)
    log.info("metrics at %s/metrics", server.listen)
    try:
        yield str(server.listen)
    finally:
        server.close()
