"""``container.type: MESOS`` for marathon-core: the scheduler-side runtime
(:mod:`.runtime`) and the cgroup v1 containerizer of the embedded agents
(:mod:`.containerizer`)."""

__version__ = "0.1.0"
