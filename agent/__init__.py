"""hwprov: give containers exactly the hardware they need.

Data flows through the packages in this order:
udev source -> Device records -> plugins (classify, probe, grant) -> compose requirements
-> plan -> reconciler -> engine. Side effects live at the two ends; the middle is pure.
"""

from agent.hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]
__version__ = "0.1.0"
