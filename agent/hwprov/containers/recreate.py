"""Recreating one container with new hardware settings, safely, and putting it back on failure.

The safe order (download-then-kill, balena's default): the original steps aside under a journal
name (containers/journal.py), the replacement is created under the final name while the
original still runs (a config the engine rejects fails here, and nothing has changed), the
original is stopped, the replacement started and checked to stay up, and only then is the
original removed. Any failure puts the original back. balena's other strategies are honoured:
kill-then-download stops the original first; hand-over runs both until the replacement says it
has taken over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprov.containers import journal
from hwprov.containers.engine import EngineAPI
from hwprov.containers.outcome import Outcome, OutcomeAction
from hwprov.containers.spec import (
    HardwareSpec,
    clone_payload,
    held_for,
    labels_of,
    name_of,
    running,
    start_failed_for_a_device,
)
from hwprov.errors import EngineError

log = logging.getLogger(__name__)

STRATEGY_LABEL = "io.balena.update.strategy"
STOP_FIRST = ("kill-then-download", "delete-then-download")
HANDOVER = "hand-over"
HANDOVER_TIMEOUT_LABEL = "io.balena.update.handover-timeout"
HANDOVER_TIMEOUT_MS = 60000  # the supervisor's default
# The supervisor bind-mounts a per-service host folder at /tmp/balena (and the legacy
# /tmp/resin); the new container writes one of these files there when it has taken over.
HANDOVER_MOUNTS = ("/tmp/balena", "/tmp/resin")
HANDOVER_FILES = ("handover-complete", "resin-kill-me")


@dataclass
class Recreator:
    engine: EngineAPI
    settle_s: float  # how long a replacement must stay up before the original goes
    # Shared with the reconciler, which owns them: ids of containers hwprov started (their
    # start events are its own doing), and names of originals a rollback could not start
    # again (their own device had gone too), to run again at the next pass.
    started: set[str]
    interrupted: set[str]
    # Whether a host node is there now (as the engine will look at it when it starts the
    # replacement): in a storm a device can go again while its swap is under way.
    present: Callable[[str], bool]

    def recreate(
        self, service: str, attrs: Mapping[str, Any], spec: HardwareSpec, diff: tuple[str, ...]
    ) -> Outcome:
        name, old_id = name_of(attrs), str(attrs["Id"])
        was_running = running(attrs)
        # Held containers were running until hwprov stopped them: they run again when released.
        # One the engine could not start for want of its device was meant to run: now it can.
        start_new = (
            was_running
            or name in self.interrupted
            or held_for(attrs) is not None
            or start_failed_for_a_device(attrs)
        ) and not spec.held
        strategy = labels_of(attrs).get(STRATEGY_LABEL, "download-then-kill")
        body, extra_networks = clone_payload(attrs, spec)
        if strategy == HANDOVER and was_running and start_new:
            return self._hand_over(service, attrs, body, extra_networks, diff)
        stop_timeout = (attrs.get("Config") or {}).get("StopTimeout")
        new_id: str | None = None
        stopped = renamed = False
        called: int | None = None
        try:
            if strategy in STOP_FIRST and was_running:
                self.engine.stop(old_id, stop_timeout)
                stopped = True
            # The original steps aside (a running container can be renamed) so the replacement
            # is created under its final name: one rename on the way from uevent to start, not
            # two. The journal is in the names: recovery undoes or finishes this from any step.
            self.engine.rename(old_id, journal.old_name(name, was_running))
            renamed = True
            called = time.monotonic_ns()
            new_id = self.engine.create(body, name)
            for network, endpoint in extra_networks:
                self.engine.connect(new_id, network, endpoint)
            # Looked at twice: before the original stops (then it never noticed) and before the
            # replacement starts (the engine would refuse it, and the rollback cost a restart).
            if start_new and (gone := self._gone(spec)):
                return self._abandon(service, name, old_id, new_id, stopped, diff, gone)
            if was_running and not stopped:
                self.engine.stop(old_id, stop_timeout)
                stopped = True
            if start_new and (gone := self._gone(spec)):
                return self._abandon(service, name, old_id, new_id, was_running, diff, gone)
            if start_new:
                self.started.add(new_id)
                self.engine.start(new_id)
                self._settle(new_id)
        except EngineError as err:
            self._roll_back(name, old_id, new_id, was_running and stopped, renamed)
            return Outcome(service, name, OutcomeAction.ROLLED_BACK, str(err), diff, old_id)
        self.remove_quietly(old_id)
        self.interrupted.discard(name)
        log.info("recreated %s (%s): %s", name, strategy, "; ".join(diff))
        if spec.held:
            detail = f"stopped until back: {spec.held}"
            return Outcome(service, name, OutcomeAction.HELD, detail, diff, new_id, called)
        detail = f"strategy {strategy}"
        return Outcome(service, name, OutcomeAction.RECREATED, detail, diff, new_id, called)

    def _gone(self, spec: HardwareSpec) -> list[str]:
        return [host for host, _, _ in spec.devices if not self.present(host)]

    def _abandon(
        self,
        service: str,
        name: str,
        old_id: str,
        new_id: str,
        restart_old: bool,
        diff: tuple[str, ...],
        gone: list[str],
    ) -> Outcome:
        """Put the original back, untouched if it was not stopped yet: its hardware is already
        gone again, and the uevent that says so brings the next plan."""
        log.info("abandoned the swap of %s: %s gone before it started", name, ", ".join(gone))
        try:
            self._roll_back(name, old_id, new_id, restart_old, renamed=True)
        except EngineError as err:  # recovery finishes from the journal names next pass
            detail = f"{', '.join(gone)} went away before the start; putting it back: {err}"
            return Outcome(service, name, OutcomeAction.ROLLED_BACK, detail, diff, old_id)
        detail = f"{', '.join(gone)} went away before the start: the original is kept"
        return Outcome(service, name, OutcomeAction.ABANDONED, detail, diff, old_id)

    def resume(self, service: str, attrs: Mapping[str, Any], spec: HardwareSpec) -> Outcome:
        """Start an interrupted original whose hardware is back as it was."""
        name, cid = name_of(attrs), str(attrs["Id"])
        if spec.held or (attrs.get("State") or {}).get("Running"):
            self.interrupted.discard(name)
            return Outcome(service, name, OutcomeAction.UNCHANGED)
        self.started.add(cid)
        try:
            self.engine.start(cid)
        except EngineError as err:
            self.started.discard(cid)
            detail = f"could not start it again: {err}"
            return Outcome(service, name, OutcomeAction.FAILED, detail, container_id=cid)
        self.interrupted.discard(name)
        detail = "stopped by a rolled-back recreate"
        return Outcome(service, name, OutcomeAction.RESTARTED, detail)

    def _hand_over(
        self,
        service: str,
        attrs: Mapping[str, Any],
        body: Mapping[str, Any],
        extra_networks: Sequence[tuple[str, Mapping[str, Any]]],
        diff: tuple[str, ...],
    ) -> Outcome:
        """balena's hand-over: the replacement starts while the original still runs, and the
        original is killed when the replacement signals it has taken over, or at the timeout.

        Both run side by side, sharing the devices: an app that needs one exclusively opens
        it after the hand-over. The wait blocks this pass, as it blocks the supervisor's.
        """
        name, old_id = name_of(attrs), str(attrs["Id"])
        try:
            timeout_ms = int(labels_of(attrs).get(HANDOVER_TIMEOUT_LABEL) or HANDOVER_TIMEOUT_MS)
        except ValueError:
            timeout_ms = HANDOVER_TIMEOUT_MS
        signals = handover_files(attrs)
        for path in signals:  # the original wrote one when it took over itself
            path.unlink(missing_ok=True)
        new_id: str | None = None
        killed = renamed = False
        try:
            new_id = self.engine.create(body, journal.new_name(name, was_running=True))
            for network, endpoint in extra_networks:
                self.engine.connect(new_id, network, endpoint)
            self.started.add(new_id)
            self.engine.start(new_id)
            self._settle(new_id)
            waited, how = self._wait_for_handover(new_id, signals, timeout_ms / 1000)
            self.engine.kill(old_id)
            killed = True
            self.engine.rename(old_id, journal.old_name(name, was_running=True))
            renamed = True
            self.engine.rename(new_id, name)
        except EngineError as err:
            self._roll_back(name, old_id, new_id, killed, renamed)
            return Outcome(service, name, OutcomeAction.ROLLED_BACK, str(err), diff, old_id)
        for path in signals:
            path.unlink(missing_ok=True)
        self.remove_quietly(old_id)
        detail = f"strategy hand-over: original killed after {waited * 1000:.0f} ms ({how})"
        return Outcome(service, name, OutcomeAction.RECREATED, detail, diff, new_id)

    def _wait_for_handover(
        self, new_id: str, signals: Sequence[Path], timeout_s: float
    ) -> tuple[float, str]:
        start = time.monotonic()
        while (waited := time.monotonic() - start) < timeout_s:
            for path in signals:
                if path.exists():
                    return waited, path.name
            state = self.engine.inspect(new_id).get("State") or {}
            if not state.get("Running"):
                raise EngineError(
                    f"the replacement stopped during hand-over (exit code {state.get('ExitCode')})"
                )
            time.sleep(0.1)  # the supervisor polls the same file every 100 ms
        return waited, "timeout"

    def _settle(self, container: str) -> None:
        time.sleep(self.settle_s)
        state = self.engine.inspect(container).get("State") or {}
        if not state.get("Running") or state.get("Restarting"):
            raise EngineError(
                f"the replacement did not stay up (exit code {state.get('ExitCode')}, "
                f"error {state.get('Error') or 'none'})"
            )

    def _roll_back(
        self, name: str, old_id: str, new_id: str | None, restart_old: bool, renamed: bool
    ) -> None:
        log.warning("rolling back %s", name)
        if new_id is not None:
            self.remove_quietly(new_id, force=True)
        if renamed:
            self.engine.rename(old_id, name)
        if restart_old:
            self.started.add(old_id)
            try:
                self.engine.start(old_id)
            except EngineError as err:
                # In a storm the original's device can go too: it stays stopped, marked to
                # run again at the next pass, instead of the service silently staying down.
                log.warning("%s could not start again: %s", name, err)
                self.started.discard(old_id)
                self.interrupted.add(name)

    def remove_quietly(self, container: str, force: bool = False) -> None:
        try:
            self.engine.remove(container, force=force)
        except EngineError as err:
            log.warning("could not remove %s: %s", container, err)


def handover_files(attrs: Mapping[str, Any]) -> list[Path]:
    """Where, on this host, the replacement's hand-over signal appears."""
    out = []
    for mount in attrs.get("Mounts") or ():
        if mount.get("Destination") in HANDOVER_MOUNTS and mount.get("Source"):
            out += [Path(mount["Source"]) / f for f in HANDOVER_FILES]
    return out
