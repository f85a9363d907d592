"""marathon-core: a Marathon for Apache Mesos, in Python.

Plugins mark their hook implementations with :data:`hookimpl`::

    from marathon_core import hookimpl

    @hookimpl
    def marathon_constraint_operators():
        return {"IN_SET": InSet()}

A plugin imports only the modules named in :data:`PLUGIN_API` (and its tests also
:data:`TESTING_API`); everything else in ``marathon_core`` is private and may change
without notice. ``tests/test_import_structure.py`` holds every plugin under
``plugins/`` to it.
"""

from __future__ import annotations

import pluggy

__all__ = ["PLUGIN_API", "PROJECT_NAME", "TESTING_API", "__version__", "hookimpl"]

__version__ = "0.1.0"

#: The pluggy project name, and the entry-point group plugins register in.
PROJECT_NAME = "marathon"

#: Marker for hook implementations in plugins.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: The modules (with their submodules) that plugins may import.
PLUGIN_API = (
    "marathon_core",  # hookimpl
    "marathon_core.hookspecs",  # the hooks, documented
    "marathon_core.model",  # the pure model, the codec, validation, event JSON
    "marathon_core.errors",  # the error hierarchy (400/404/409/422, ...)
    "marathon_core.config",  # Config and OptionParser
    "marathon_core.contracts",  # what plugins implement, and the facade services get
    "marathon_core.plugins",  # the plugin host: load installed plugins, ask their registries
    "marathon_core.task_process",  # agent side: start a task's process in its sandbox
    "marathon_core.redaction",  # keep passwords and tokens out of logs and the API
)
#: What plugins' tests may import besides: fixtures, a context over memory state.
TESTING_API = ("marathon_core.testing",)
