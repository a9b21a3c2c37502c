"""Make each service's containers match the plan, recreating them safely.

The safe order (download-then-kill, balena's default): create the replacement under a
temporary name while the old container still runs (a config the engine rejects fails here,
and nothing has changed), stop the old one, swap the names, start the new one, check it
stays up, and only then remove the old one. Any failure puts the old container back.

The names carry the state of a swap in flight, so a hwprov killed at any step is recovered
by the next run from the engine alone, with no journal to lose: `<name>.hwprov-new` is a
replacement not yet swapped in, `<name>.hwprov-old` is the original kept until its
replacement has proved itself, and a `-running` ending on either says the original was
running before the swap, so recovery knows whether to start what it puts back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwprov.containers import livegrant
from hwprov.containers.engine import (
    BALENA_SERVICE,
    BALENA_SUPERVISED,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    Engine,
    HostPaths,
)
from hwprov.containers.spec import (
    HardwareSpec,
    caps_set,
    clone_payload,
    differences,
    held_for,
    wanted,
)
from hwprov.errors import EngineError
from hwprov.planning.plan import Plan, ServicePlan

log = logging.getLogger(__name__)

NEW_SUFFIX = ".hwprov-new"
OLD_SUFFIX = ".hwprov-old"
RUNNING = "-running"
TEMP_ENDINGS = (NEW_SUFFIX, OLD_SUFFIX, NEW_SUFFIX + RUNNING, OLD_SUFFIX + RUNNING)
STRATEGY_LABEL = "io.balena.update.strategy"
STOP_FIRST = ("kill-then-download", "delete-then-download")
HANDOVER = "hand-over"
HANDOVER_TIMEOUT_LABEL = "io.balena.update.handover-timeout"
HANDOVER_TIMEOUT_MS = 60000  # the supervisor's default
# The supervisor bind-mounts a per-service host folder at /tmp/balena (and the legacy
# /tmp/resin); the new container writes one of these files there when it has taken over.
HANDOVER_MOUNTS = ("/tmp/balena", "/tmp/resin")
HANDOVER_FILES = ("handover-complete", "resin-kill-me")


@dataclass(frozen=True, slots=True)
class Outcome:
    service: str
    container: str | None
    # unchanged, recreated, would-recreate, rolled-back, restarted, failed, missing, skipped, ...
    action: str
    detail: str = ""
    differences: tuple[str, ...] = ()


def _caps_of(attrs: Mapping[str, Any]) -> set[str]:
    return caps_set((attrs.get("HostConfig") or {}).get("CapAdd"))


def _name(attrs: Mapping[str, Any]) -> str:
    return str(attrs.get("Name", "")).lstrip("/")


def _labelled(summary: Mapping[str, Any], labels: Mapping[str, str | None]) -> bool:
    """The engine's label filter, on a listing's summary: `None` asks only for the key."""
    have = summary.get("Labels") or {}
    return all(k in have and (v is None or have[k] == v) for k, v in labels.items())


@dataclass
class Reconciler:
    engine: Engine
    project: str | None = None
    host_path: HostPaths = field(default_factory=HostPaths)
    settle_s: float = 0.5  # how long a replacement must stay up before the original goes
    on_unplug: str = "recreate"  # or "stop": a service missing required hardware is held stopped
    _live: dict[tuple[str, int], dict[str, tuple[int, int, str]]] = field(default_factory=dict)
    # ids of containers hwprov started: their start events are its own doing
    started: set[str] = field(default_factory=set)
    # names of containers that ran until a recreate stopped them and a rollback could not
    # start them again (their own device had gone too): they run again at the next pass
    interrupted: set[str] = field(default_factory=set)

    # -- finding containers -------------------------------------------------------------

    def containers_of(
        self, service: str, summaries: Sequence[Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Inspected containers of one service: compose-created, or supervisor-created.

        `summaries` is one pass's listing of every container: the engine cannot OR label
        filters, and one unfiltered list costs what one filtered list does (~5 ms), so a pass
        lists once instead of twice per service and once more for recovery.
        """
        compose = {COMPOSE_SERVICE: service}
        if self.project:
            compose[COMPOSE_PROJECT] = self.project
        if summaries is None:
            summaries = self.engine.containers()
        ids = [
            str(c["Id"])
            for c in summaries
            if _labelled(c, compose) or _labelled(c, {BALENA_SERVICE: service})
        ]
        attrs = [self.engine.inspect(cid) for cid in ids]
        # A swap in flight is recovered before anything else touches the service.
        return [a for a in attrs if not _name(a).endswith(TEMP_ENDINGS)]

    # -- reconciling ----------------------------------------------------------------------

    def reconcile(
        self, plan: Plan, order: Sequence[str] | None = None, dry_run: bool = False
    ) -> list[Outcome]:
        """One pass over the plan's services, in `order` (depends_on first) when given."""
        by_name = {s.service: s for s in plan.services}
        names = [n for n in (order or ()) if n in by_name]
        names += sorted(set(by_name) - set(names))
        summaries = self.engine.containers()
        outcomes = [] if dry_run else self.recover(summaries)
        if outcomes:  # recovery renamed, removed or started some: list what is there now
            summaries = self.engine.containers()
        for name in names:
            outcomes.extend(self.reconcile_service(by_name[name], dry_run, summaries))
        return outcomes

    def reconcile_service(
        self,
        plan: ServicePlan,
        dry_run: bool = False,
        summaries: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Outcome]:
        if not plan.managed:
            return [Outcome(plan.service, None, "skipped", "io.hwprov.enable is false")]
        containers = self.containers_of(plan.service, summaries)
        if not containers:
            return [Outcome(plan.service, None, "missing", "no container for this service")]
        spec = replace(wanted(plan, self.host_path), held=self._held(plan))
        outcomes = []
        for attrs in containers:
            if (attrs["Config"].get("Labels") or {}).get(BALENA_SUPERVISED) is not None:
                # The supervisor reverts Devices/CapAdd changes and breaks on foreign names:
                # its containers keep their config and get devices live (the cgroup strategy).
                outcomes.append(self.grant_live(plan, attrs, dry_run))
                continue
            diff = tuple(differences(attrs, spec))
            if not diff and _name(attrs) in self.interrupted and not dry_run:
                outcomes.append(self._resume(plan.service, attrs, spec))
            elif not diff:
                outcomes.append(Outcome(plan.service, _name(attrs), "unchanged"))
            elif dry_run:
                outcomes.append(Outcome(plan.service, _name(attrs), "would-recreate", "", diff))
            else:
                outcomes.append(self.recreate(plan.service, attrs, spec, diff))
        return outcomes

    def _held(self, plan: ServicePlan) -> str | None:
        """Why the service must be kept stopped under the `stop` unplug policy, if it must."""
        if (plan.on_unplug or self.on_unplug) != "stop":
            return None
        missing = [u.what for u in plan.unmet if not u.optional]
        return "; ".join(missing)[:200] or None  # a label value, kept short

    # -- granting live (supervisor-owned containers) ----------------------------------------

    def grant_live(self, plan: ServicePlan, attrs: Mapping[str, Any], dry_run: bool) -> Outcome:
        """Give the running container exactly the plan's nodes, without touching its config.

        Grants are remembered per (container, pid): a restart gives the container a fresh /dev
        and cgroup, so the next pass sees a new pid and grants again.
        """
        name, state = _name(attrs), attrs.get("State") or {}
        if not state.get("Running"):
            return Outcome(plan.service, name, "unchanged", "not running: granted when it starts")
        key = (str(attrs["Id"]), int(state["Pid"]))
        want = {}
        for d in plan.devices:
            try:
                st = os.stat(self.host_path(d.host))
            except OSError as err:
                return Outcome(plan.service, name, "failed", f"{d.host}: {err.strerror}")
            want[d.container] = (os.major(st.st_rdev), os.minor(st.st_rdev), d.permissions)
        have = self._live.get(key, {})
        changes = tuple(
            [
                f"+ {p} c {m}:{n} {perm}"
                for p, (m, n, perm) in sorted(want.items())
                if have.get(p) != (m, n, perm)
            ]
            + [f"- {p}" for p in sorted(set(have) - set(want))]
        )
        caps = sorted({c.value for c in plan.capabilities} - _caps_of(attrs))
        note = f"; needs {caps} at create (hwprov migrate)" if caps else ""
        if not changes:
            return Outcome(plan.service, name, "unchanged", note.lstrip("; "))
        if dry_run:
            return Outcome(plan.service, name, "would-grant", note.lstrip("; "), changes)
        try:
            for path in sorted(set(have) - set(want)):
                major, minor, _ = have[path]
                livegrant.revoke(key[1], path, major, minor)
            for path, (major, minor, perms) in sorted(want.items()):
                if have.get(path) != (major, minor, perms):
                    livegrant.grant(key[1], path, major, minor, perms)
        except livegrant.LiveGrantError as err:
            return Outcome(plan.service, name, "failed", str(err), changes)
        self._live = {k: v for k, v in self._live.items() if k[0] != key[0]}
        self._live[key] = want
        return Outcome(plan.service, name, "granted", "cgroup strategy, no restart" + note, changes)

    # -- recreating -----------------------------------------------------------------------

    def recreate(
        self,
        service: str,
        attrs: Mapping[str, Any],
        spec: HardwareSpec,
        diff: tuple[str, ...] = (),
    ) -> Outcome:
        name, old_id = _name(attrs), str(attrs["Id"])
        was_running = bool((attrs.get("State") or {}).get("Running"))
        # Held containers were running until hwprov stopped them: they run again when released.
        start_new = (
            was_running or name in self.interrupted or held_for(attrs) is not None
        ) and not spec.held
        strategy = (attrs["Config"].get("Labels") or {}).get(STRATEGY_LABEL, "download-then-kill")
        stop_first = strategy in STOP_FIRST
        body, extra_networks = clone_payload(attrs, spec)
        stop_timeout = attrs["Config"].get("StopTimeout")
        if strategy == HANDOVER and was_running and start_new:
            return self._hand_over(service, attrs, body, extra_networks, diff)
        ending = RUNNING if was_running else ""
        new_id: str | None = None
        stopped = renamed = False
        try:
            if stop_first and was_running:
                self.engine.stop(old_id, stop_timeout)
                stopped = True
            # The original steps aside (a running container can be renamed) so the replacement
            # is created under its final name: one rename on the way from uevent to start, not
            # two. The journal is in the names: `recover` undoes or finishes this from any step.
            self.engine.rename(old_id, name + OLD_SUFFIX + ending)
            renamed = True
            new_id = self.engine.create(body, name)
            for network, endpoint in extra_networks:
                self.engine.connect(new_id, network, endpoint)
            if was_running and not stopped:
                self.engine.stop(old_id, stop_timeout)
                stopped = True
            if start_new:
                self.started.add(new_id)
                self.engine.start(new_id)
                self._settle(new_id)
        except EngineError as err:
            self._roll_back(name, old_id, new_id, was_running and stopped, renamed)
            return Outcome(service, name, "rolled-back", str(err), diff)
        self._remove_quietly(old_id)
        self.interrupted.discard(name)
        log.info("recreated %s (%s): %s", name, strategy, "; ".join(diff))
        if spec.held:
            return Outcome(service, name, "held", f"stopped until back: {spec.held}", diff)
        return Outcome(service, name, "recreated", f"strategy {strategy}", diff)

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
        name, old_id = _name(attrs), str(attrs["Id"])
        labels = attrs["Config"].get("Labels") or {}
        try:
            timeout_ms = int(labels.get(HANDOVER_TIMEOUT_LABEL) or HANDOVER_TIMEOUT_MS)
        except ValueError:
            timeout_ms = HANDOVER_TIMEOUT_MS
        signals = _handover_files(attrs)
        for path in signals:  # the original wrote one when it took over itself
            path.unlink(missing_ok=True)
        new_id: str | None = None
        killed = renamed = False
        try:
            new_id = self.engine.create(body, name + NEW_SUFFIX + RUNNING)
            for network, endpoint in extra_networks:
                self.engine.connect(new_id, network, endpoint)
            self.started.add(new_id)
            self.engine.start(new_id)
            self._settle(new_id)
            waited, how = self._wait_for_handover(new_id, signals, timeout_ms / 1000)
            self.engine.kill(old_id)
            killed = True
            self.engine.rename(old_id, name + OLD_SUFFIX + RUNNING)
            renamed = True
            self.engine.rename(new_id, name)
        except EngineError as err:
            self._roll_back(name, old_id, new_id, killed, renamed)
            return Outcome(service, name, "rolled-back", str(err), diff)
        for path in signals:
            path.unlink(missing_ok=True)
        self._remove_quietly(old_id)
        detail = f"strategy hand-over: original killed after {waited * 1000:.0f} ms ({how})"
        return Outcome(service, name, "recreated", detail, diff)

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
            self._remove_quietly(new_id, force=True)
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

    def _resume(self, service: str, attrs: Mapping[str, Any], spec: HardwareSpec) -> Outcome:
        """Start an interrupted original whose hardware is back as it was."""
        name, cid = _name(attrs), str(attrs["Id"])
        if spec.held or (attrs.get("State") or {}).get("Running"):
            self.interrupted.discard(name)
            return Outcome(service, name, "unchanged")
        self.started.add(cid)
        try:
            self.engine.start(cid)
        except EngineError as err:
            self.started.discard(cid)
            return Outcome(service, name, "failed", f"could not start it again: {err}")
        self.interrupted.discard(name)
        return Outcome(service, name, "restarted", "stopped by a rolled-back recreate")

    def _remove_quietly(self, container: str, force: bool = False) -> None:
        try:
            self.engine.remove(container, force=force)
        except EngineError as err:
            log.warning("could not remove %s: %s", container, err)

    # -- crash recovery ---------------------------------------------------------------------

    def recover(self, summaries: Sequence[Mapping[str, Any]] | None = None) -> list[Outcome]:
        """Finish or undo swaps that a killed hwprov left half-done. Never loses a container."""
        labels: dict[str, str | None] = {COMPOSE_PROJECT: self.project} if self.project else {}
        if summaries is None:
            summaries = self.engine.containers()
        everyone = [c for c in summaries if _labelled(c, labels or {COMPOSE_SERVICE: None})]
        by_name = {str(c["Names"][0]).lstrip("/"): c for c in everyone if c.get("Names")}
        swaps: dict[str, dict[str, Any]] = {}
        for name, summary in by_name.items():
            for ending in TEMP_ENDINGS:
                if name.endswith(ending):
                    role = "new" if ending.startswith(NEW_SUFFIX) else "old"
                    swap = swaps.setdefault(name.removesuffix(ending), {})
                    swap[role] = summary
                    swap["was_running"] = swap.get("was_running", False) or ending.endswith(RUNNING)
        return [
            self._recover(base, swap, by_name.get(base)) for base, swap in sorted(swaps.items())
        ]

    def _recover(
        self, base: str, swap: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> Outcome:
        new, old = swap.get("new"), swap.get("old")
        if old is not None and current is not None and current.get("State") == "running":
            # The replacement was swapped in and runs: finish the swap.
            self.engine.remove(old["Id"], force=True)
            return Outcome(base, base, "recovered", "the replacement runs; removed the original")
        if new is not None:
            self.engine.remove(new["Id"], force=True)  # never swapped in
        if old is not None:
            if current is not None:  # a replacement swapped in that never ran
                self.engine.remove(current["Id"], force=True)
            self.engine.rename(old["Id"], base)
            current = old
        if current is not None and swap["was_running"] and current.get("State") != "running":
            self.started.add(str(current["Id"]))
            self.engine.start(current["Id"])
        return Outcome(
            base, base, "recovered", "an unfinished swap was undone; the original is back"
        )


def _handover_files(attrs: Mapping[str, Any]) -> list[Path]:
    """Where, on this host, the replacement's hand-over signal appears."""
    out = []
    for mount in attrs.get("Mounts") or ():
        if mount.get("Destination") in HANDOVER_MOUNTS and mount.get("Source"):
            out += [Path(mount["Source"]) / f for f in HANDOVER_FILES]
    return out


def start_order(depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """Services with their dependencies first (depends_on orders starts; cycles keep file order)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:
            return
        visiting.add(name)
        for dep in depends_on.get(name, ()):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in depends_on:
        visit(name)
    return order
