"""marathon-jobs: a Chronos-style job scheduler, a Mesos framework built on marathon-core.

It uses the core only through the framework API (:mod:`marathon_core.framework`) and
the plugin API; see ``docs/writing_frameworks.md``.
"""

from __future__ import annotations

__version__ = "0.1.0"
