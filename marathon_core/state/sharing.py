"""One object for each value that many decoded instances repeat.

Why: each stored instance is decoded on its own, so 100k instances of 10 apps held
100k copies of their app's id, of its version, of the agent they run on, and every
task id parsed its own copy of its instance id: 2.2 kB per decoded instance against
0.9 kB for the same instance as the scheduler builds it (where these are shared by
construction). A new leader holds what it decoded for its whole term.

:class:`Sharing` is applied to objects just decoded, which nobody else holds yet: it
points their fields at the first equal value it saw during one load. The values are
immutable (frozen attrs classes, strings, tuples), so sharing them is invisible but
for ``is``; the fields are set in place because rebuilding every instance would cost
as much as decoding it again.
"""

from __future__ import annotations

from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Instance

__all__ = ["Sharing"]

_set = object.__setattr__


class Sharing:
    """The values seen during one load, each kept once (a table per kind of value:
    cheaper to hash and never equal across kinds)."""

    def __init__(self) -> None:
        self._ids: dict[PathId, PathId] = {}
        self._versions: dict[Timestamp | None, Timestamp | None] = {}
        self._agents: dict[AgentInfo, AgentInfo] = {}
        self._texts: dict[str | None, str | None] = {}
        self._addresses: dict[tuple[str, ...], tuple[str, ...]] = {}

    def instance(self, instance: Instance) -> Instance:
        """``instance`` with its repeated values shared (in place: just decoded)."""
        iid = instance.instance_id
        run_spec_id = iid.run_spec_id
        _set(iid, "run_spec_id", self._ids.setdefault(run_spec_id, run_spec_id))
        versions, texts = self._versions, self._texts
        version = instance.run_spec_version
        _set(instance, "run_spec_version", versions.setdefault(version, version))
        _set(instance, "role", texts.setdefault(instance.role, instance.role))
        agent = instance.agent
        if agent is not None:
            shared = self._agents.get(agent)
            if shared is None:
                _set(agent, "host", texts.setdefault(agent.host, agent.host))
                _set(agent, "agent_id", texts.setdefault(agent.agent_id, agent.agent_id))
                shared = self._agents[agent] = agent
            _set(instance, "agent", shared)
        for task in instance.tasks:
            task_iid = task.task_id.instance_id
            if task_iid.uuid == iid.uuid and task_iid == iid:
                _set(task.task_id, "instance_id", iid)
            version = task.run_spec_version
            _set(task, "run_spec_version", versions.setdefault(version, version))
            _set(task, "mesos_state", texts.setdefault(task.mesos_state, task.mesos_state))
            addresses = task.ip_addresses
            _set(task, "ip_addresses", self._addresses.setdefault(addresses, addresses))
        return instance
