"""One hierarchy for every error hwprov reports to a user.

Each message names the thing that is wrong (a file and line, a device, a socket) so that
the CLI can print it as is, without a traceback.
"""

from __future__ import annotations


class HwprovError(Exception):
    """Base of every error hwprov expects and reports cleanly."""


class BoardError(HwprovError):
    """A board description in hw-fixtures/ is broken."""

    def __init__(self, source: str, entry: str, message: str) -> None:
        self.source = source
        self.entry = entry
        self.message = message
        super().__init__(f"{source}: {entry}: {message}")


class SimulatorError(HwprovError):
    """The board simulator could not start, or a control request failed."""


class MissingDependency(SimulatorError):
    """Something the simulator needs is not installed; the message says what to install."""


class EngineError(HwprovError):
    """The container engine is unreachable, or refused a request."""


class EngineNotFound(EngineError):
    """The container named is gone: someone removed it. Not an engine outage."""


class EngineUnreachable(EngineError):
    """No engine answers at the socket: down, restarting, or the wrong address."""


class ComposeError(HwprovError):
    """A compose file is broken or uses something hwprov cannot honour."""

    def __init__(self, source: str, line: int | None, column: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.message = message
        where = source if line is None else f"{source}:{line}:{column or 1}"
        super().__init__(f"{where}: {message}")


class PluginError(HwprovError):
    """A plugin broke a contract of the plugin API (e.g. asked for the node of hardware that has
    none); the plugin host records it as a Problem of that plugin."""


class UdevError(HwprovError):
    """The udev source cannot be read (no netlink socket, no sysfs)."""
