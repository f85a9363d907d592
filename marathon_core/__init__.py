"""marathon-core: a Marathon for Apache Mesos, in Python.

Plugins mark their hook implementations with :data:`hookimpl`::

    from marathon_core import hookimpl

    @hookimpl
    def marathon_constraint_operators():
        return {"IN_SET": InSet()}
"""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]

__version__ = "0.1.0"

#: The pluggy project name, and the entry-point group plugins register in.
PROJECT_NAME = "marathon"

#: Marker for hook implementations in plugins.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
