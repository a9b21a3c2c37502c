"""umockdev's GObject bindings: the simulator's one optional dependency (the `sim` extra).

Every simulator module takes `UMockdev` from here, so that a machine without them gets one line
saying what to install instead of an ImportError's traceback.
"""

from __future__ import annotations

from hwprov.errors import MissingDependency

# PyGObject has no wheels for Linux: pip builds it against these (scripts/bootstrap.sh).
PYGOBJECT_BUILD = "libgirepository1.0-dev libcairo2-dev pkg-config gobject-introspection"
# umockdev-wrapper and its preload library, and the typelib gi loads UMockdev from.
UMOCKDEV_DEBS = "umockdev gir1.2-umockdev-1.0"

try:
    import gi
except ImportError as err:
    raise MissingDependency(
        f"the simulator needs PyGObject ({err}): pip install 'hwprov[sim]', which builds "
        f"against the Debian packages {PYGOBJECT_BUILD}; the simulator also needs {UMOCKDEV_DEBS}"
    ) from None

try:
    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev
except (ValueError, ImportError) as err:  # gi says ValueError for a typelib it cannot find
    raise MissingDependency(
        f"the simulator needs umockdev's GObject bindings ({err}): apt-get install {UMOCKDEV_DEBS}"
    ) from None

__all__ = ["UMockdev"]
