"""hwprov: give containers exactly the hardware they need.

The sub-packages are the stages of the flow, in order:
hardware (udev, read at the edge) -> plugins (classify, probe, grant) -> compose (the services)
-> planning (pure: what each container gets, and why) -> containers (engine, reconcile,
live grant) -> daemon (`hwprov run`) -> commands (the CLI). Side effects live at the two ends;
the middle is pure. Plugin authors import from `hwprov.plugins` only.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
