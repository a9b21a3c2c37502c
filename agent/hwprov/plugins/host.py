"""The typed front door to the plugins: load them, call their hooks, contain their failures.

pluggy stops a hook call at the first implementation that raises, and one broken entry point
would stop start-up. hwprov is an agent that must keep running, so each entry point is loaded
on its own and each implementation is called on its own: a failure is recorded in `problems`,
logged, and the other plugins carry on.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from hwprov.errors import PluginError
from hwprov.plugins import hookspecs
from hwprov.plugins.i2cprobe import ChipSignature, ProbeIO
from hwprov.records import Grant, Hardware, UdevDevice

log = logging.getLogger(__name__)

BUILTIN_PLUGINS = tuple(
    f"hwprov_builtins.{name}" for name in ("i2c", "serial", "gpio", "bluetooth")
)


@dataclass(frozen=True, slots=True)
class Problem:
    plugin: str
    where: str  # "load" or the hook name
    error: str


@dataclass(frozen=True, slots=True)
class KnownKinds:
    """The kinds the loaded plugins produce, and the classifying plugins that did not say."""

    names: frozenset[str]
    undeclared: tuple[str, ...] = ()


class PluginHost:
    def __init__(self, disabled: Iterable[str] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.disabled = frozenset(disabled)
        self.problems: list[Problem] = []

    # -- loading -------------------------------------------------------------------------

    def load(self, eps: Iterable[EntryPoint] | None = None, builtins: bool = True) -> PluginHost:
        """Entry-point plugins first, then the built-ins (whose hooks are trylast)."""
        for ep in entry_points(group=hookspecs.PROJECT) if eps is None else eps:
            if ep.name in self.disabled:
                continue
            try:
                self.register(ep.load(), ep.name)
            except Exception as err:  # any import-time failure must not stop the agent
                self._problem(ep.name, "load", err)
        if builtins:
            for module_name in BUILTIN_PLUGINS:
                name = module_name.split(".")[-1]
                if name not in self.disabled:
                    self.register(importlib.import_module(module_name), name)
        self._check_pending()
        return self

    def _check_pending(self) -> None:
        """A hook implementation no spec matches (`hwprov_clasify`) is a problem, not silence:
        pluggy would never call it. pluggy's check raises at the first; each is reported."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError:
            hooks = {
                n: c for n, c in vars(self.pm.hook).items() if isinstance(c, pluggy.HookCaller)
            }
            known = ", ".join(sorted(n for n, c in hooks.items() if c.has_spec()))
            for name, caller in sorted(hooks.items()):
                for impl in [] if caller.has_spec() else caller.get_hookimpls():
                    if not impl.optionalhook:
                        error = PluginError(f"{name} is not a hwprov hook (hooks: {known})")
                        self._problem(impl.plugin_name, "load", error)

    def register(self, plugin: ModuleType | object, name: str) -> None:
        if name in self.disabled:
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as err:  # e.g. a hookimpl whose signature matches no spec
            self._problem(name, "load", err)

    @property
    def names(self) -> list[str]:
        return sorted(n for n, _ in self.pm.list_name_plugin())

    # -- calling, one implementation at a time -------------------------------------------

    def _call(self, hook_name: str, firstresult: bool, **kwargs: Any) -> list[tuple[str, Any]]:
        """(plugin name, result) of each implementation that returned something."""
        hook = getattr(self.pm.hook, hook_name)
        results = []
        # pluggy calls the implementations last-registered first, trylast ones at the end.
        for impl in reversed(hook.get_hookimpls()):
            args = {k: kwargs[k] for k in impl.argnames}
            try:
                result = impl.function(**args)
            except Exception as err:
                self._problem(impl.plugin_name, hook_name, err)
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
                if firstresult:
                    break
        return results

    def _first(self, hook_name: str, **kwargs: Any) -> Any:
        results = self._call(hook_name, True, **kwargs)
        return results[0][1] if results else None

    def _collect(self, hook_name: str, check: Callable[[Any], bool], **kwargs: Any) -> list[Any]:
        out = []
        for plugin, result in self._call(hook_name, False, **kwargs):
            if not isinstance(result, list | tuple):  # a str would be read as its characters
                self._problem(plugin, hook_name, TypeError(f"expected a list, got {result!r}"))
                continue
            for item in result:
                if check(item):
                    out.append(item)
                else:
                    self._problem(plugin, hook_name, TypeError(f"unexpected item {item!r}"))
        return out

    def subsystems(self) -> list[str]:
        return sorted(set(self._collect("hwprov_subsystems", lambda s: isinstance(s, str))))

    def kinds(self) -> KnownKinds:
        declared = self._collect("hwprov_kinds", lambda s: isinstance(s, str) and s != "")
        declaring = {impl.plugin_name for impl in self.pm.hook.hwprov_kinds.get_hookimpls()}
        classifying = {impl.plugin_name for impl in self.pm.hook.hwprov_classify.get_hookimpls()}
        return KnownKinds(frozenset(declared), tuple(sorted(classifying - declaring)))

    def sysfs_attributes(self) -> list[str]:
        return sorted(set(self._collect("hwprov_sysfs_attributes", lambda s: isinstance(s, str))))

    def i2c_chips(self) -> list[ChipSignature]:
        return self._collect("hwprov_i2c_chips", lambda s: isinstance(s, ChipSignature))

    def affects(self, device: UdevDevice) -> list[str]:
        found = self._collect("hwprov_affects", lambda s: isinstance(s, str), device=device)
        return sorted(set(found))

    def classify(self, device: UdevDevice) -> Hardware | None:
        result = self._first("hwprov_classify", device=device)
        return result if isinstance(result, Hardware) else None

    def probe(self, hardware: Hardware, io: ProbeIO) -> Hardware:
        result = self._first("hwprov_probe", hardware=hardware, io=io)
        return result if isinstance(result, Hardware) else hardware

    def grant(self, hardware: Hardware) -> Grant | None:
        result = self._first("hwprov_grant", hardware=hardware)
        return result if isinstance(result, Grant) else None

    def _problem(self, plugin: str, where: str, err: BaseException) -> None:
        problem = Problem(plugin=plugin, where=where, error=f"{type(err).__name__}: {err}")
        self.problems.append(problem)
        log.warning("plugin %s failed in %s: %s", plugin, where, problem.error)
