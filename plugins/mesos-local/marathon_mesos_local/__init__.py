"""marathon-mesos-local: an embedded Mesos master and agents that speak the real v1 API.

The master (:mod:`.master`) serves the Mesos v1 scheduler HTTP API on trio; agents
(:mod:`.agent`) are separate OS processes, one loopback address each, that run tasks
through containerizers. :mod:`.cluster` starts both; :mod:`.plugin` plugs the cluster
into ``marathon --master local``.
"""

from __future__ import annotations

__all__ = ["MESOS_VERSION", "__version__"]

__version__ = "0.1.0"

#: The Mesos version this master reports (the v1 API is stable across 1.x).
MESOS_VERSION = "1.12.0"
