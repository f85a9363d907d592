"""Agents joining and leaving: registration, re-registration, unregistration, loss.

Every change is stored in the registry (:mod:`.registry`) before the master acts on
it, as Mesos's registrar does; while one is under way for an agent, other changes to
that agent wait (a re-registration is refused with 409 and retried by the agent).
An agent is lost when its pings time out (:mod:`.links`) or, after a master
failover, when it does not re-register within ``--agent_reregister_timeout``.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from typing import Any

import trio

from marathon_mesos_local.http import Request, Response
from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.links import AgentLinks
from marathon_mesos_local.master.model import (
    Agent,
    AllocationTrigger,
    MasterIdentity,
    MasterOptions,
    SimulatedAgentProtocol,
    master_status,
    update_event,
)
from marathon_mesos_local.master.offers import Allocator
from marathon_mesos_local.master.registry import AgentInfo, Registry, UnreachableAgent
from marathon_mesos_local.master.reregistration import reconcile_agent
from marathon_mesos_local.messages import TERMINAL_STATES, mesos_id
from marathon_mesos_local.resources import ResourceError, Resources

__all__ = ["Membership"]

log = logging.getLogger(__name__)


class Membership:
    """Which agents are in the cluster, kept in step with the registry."""

    def __init__(
        self,
        books: Books,
        allocator: Allocator,
        trigger: AllocationTrigger,
        registry: Registry,
        options: MasterOptions,
        identity: MasterIdentity,
    ) -> None:
        self.books = books
        self.allocator = allocator
        self.trigger = trigger
        self.registry = registry
        self.options = options
        self.identity = identity
        self.links = AgentLinks(options, on_unreachable=self.mark_unreachable)
        #: Agents with a registry change under way (re-registering, being marked
        #: unreachable or removed): other changes to them wait until it is done.
        self._transitioning: set[str] = set()
        self._agent_numbers = itertools.count()
        self._agents_changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the agents' links until cancelled."""
        await self.links.run(task_status=task_status)

    async def wait_agents(self, count: int) -> None:
        """Return once at least ``count`` agents are registered."""
        while len(self.books.agents) < count:
            await self._agents_changed.wait()

    async def agents_changed(self) -> None:
        """Wait for the next change of the agent registry (register, re-register, loss)."""
        await self._agents_changed.wait()

    def _changed(self) -> None:
        self._agents_changed.set()
        self._agents_changed = trio.Event()

    async def register(self, request: Request) -> Response:
        """Register a new agent, or re-register one that knows its id (agent restart,
        partition, master failover); the registry is updated before the agent is told.

        A re-registration while another registry change of the same agent is under way
        is refused with 409; the agent tries again.
        """
        try:
            body = request.json()
            resources = Resources.from_json(body["resources"])
            attributes = list(body.get("attributes", []))
            hostname, port = str(body["hostname"]), int(body["port"])
            agent_id = body.get("agent_id")
            frameworks = [dict(f) for f in body.get("frameworks", [])]
            reported = [
                (str(t["framework_id"]), dict(t["task"]), str(t["state"]))
                for t in body.get("tasks", [])
            ]
            executors = [
                (str(e["framework_id"]), dict(e["executor"])) for e in body.get("executors", [])
            ]
        except (ValueError, KeyError, TypeError, ResourceError) as exc:
            return Response.text(400, f"Bad registration: {exc}")
        reregistering = agent_id is not None
        agent_id = str(agent_id) if reregistering else self._next_agent_id()
        info: AgentInfo = {
            "id": mesos_id(agent_id),
            "hostname": hostname,
            "port": port,
            "resources": resources.to_json(),
            "attributes": attributes,
        }
        if agent_id in self._transitioning:
            return Response.text(409, f"Agent {agent_id} is changing in the registry; retry")
        recovered = agent_id in self.books.recovered_agents
        self._transitioning.add(agent_id)
        try:
            if self.registry.admitted.get(agent_id) != info:
                await self.registry.admit(info)
        finally:
            self._transitioning.discard(agent_id)
        agent = self.add_agent(
            hostname, port, resources, attributes, pid=body.get("pid"), agent_id=agent_id
        )
        if reregistering:
            reconcile_agent(
                self.books,
                self.trigger,
                agent,
                frameworks,
                reported,
                executors,
                recovered=recovered,
            )
        return Response.json(
            {
                "agent_id": agent.id,
                "master_id": self.identity.id,
                "ping_timeout": self.options.agent_ping_timeout,
                "max_ping_timeouts": self.options.max_agent_ping_timeouts,
            }
        )

    def add_agent(
        self,
        hostname: str,
        port: int,
        resources: Resources,
        attributes: list[dict[str, Any]],
        *,
        pid: int | None = None,
        agent_id: str | None = None,
        simulated: SimulatedAgentProtocol | None = None,
    ) -> Agent:
        """Admit an agent under ``agent_id`` (a fresh id if None); an id the master
        knows (registered, unreachable, or recovered from the registry) re-registers."""
        old = None
        known = False
        if agent_id is not None:
            old = self.books.agents.pop(agent_id, None)
            known = old is not None
            known |= self.books.unreachable_agents.pop(agent_id, None) is not None
            known |= self.books.recovered_agents.pop(agent_id, None) is not None
        if old is not None:
            old.scope.cancel()
            old.outbox.close()
            self.allocator.rescind_offers_on(old.id)
        send, receive = trio.open_memory_channel[tuple[str, dict[str, Any]]](math.inf)
        agent = Agent(
            id=agent_id if agent_id is not None else self._next_agent_id(),
            hostname=hostname,
            port=port,
            pid=pid,
            total=resources,
            attributes=attributes,
            registered_time=old.registered_time if old is not None else time.time(),
            outbox=send,
            simulated=simulated,
        )
        if known:
            agent.reregistered_time = time.time()
            log.info("agent %s re-registered at %s", agent.id, agent.url)
        else:
            log.info("agent %s registered at %s with %s", agent.id, agent.url, resources)
        self.books.agents[agent.id] = agent
        if simulated is None:
            self.links.open(agent, receive)
        else:
            receive.close()
        self._changed()
        self.trigger.request(agent.id)
        return agent

    async def mark_unreachable(self, agent: Agent, why: str) -> None:
        """Take an agent out of the cluster as Mesos does when its pings time out.

        The registry moves it to the unreachable agents first. Then its offers are
        rescinded; each of its tasks is reported once by the master (no uuid) as
        TASK_UNREACHABLE to PARTITION_AWARE frameworks and TASK_LOST to the others, with
        ``REASON_AGENT_REMOVED`` and ``unreachable_time``; every connected framework
        gets ``FAILURE{agent_id}``.
        """
        if self.books.agents.get(agent.id) is not agent or agent.id in self._transitioning:
            return
        now = time.time()
        self._transitioning.add(agent.id)
        try:
            await self.registry.mark_unreachable([agent.info], now)
        finally:
            self._transitioning.discard(agent.id)
        log.warning("agent %s (%s) is unreachable: %s", agent.id, agent.hostname, why)
        self.books.unreachable_agents[agent.id] = UnreachableAgent(agent.info, now)
        self._remove(agent, f"Agent {agent.hostname} is unreachable: {why}", now)

    async def unregister(self, request: Request) -> Response:
        """An agent shutting down (its tasks killed) leaves the cluster for good, as a
        Mesos agent does on SIGUSR1: it is removed from the registry, and what the
        master still knows of its tasks is reported ``TASK_GONE_BY_OPERATOR`` (PA) /
        ``TASK_LOST``."""
        try:
            agent_id = str(request.json()["agent_id"])
        except (ValueError, KeyError, TypeError) as exc:
            return Response.text(400, f"Bad unregistration: {exc}")
        agent = self.books.agents.get(agent_id)
        if agent is None or agent_id in self._transitioning:
            log.warning("Ignoring unregister agent message for unknown agent %s", agent_id)
            return Response(202)
        self._transitioning.add(agent_id)
        try:
            await self.registry.remove(agent_id)
        finally:
            self._transitioning.discard(agent_id)
        log.info("removing agent %s (%s): the agent unregistered", agent.id, agent.hostname)
        self._remove(agent, f"Agent {agent.hostname} removed: the agent unregistered")
        return Response(202)

    def _remove(self, agent: Agent, message: str, unreachable_time: float | None = None) -> None:
        """Mesos's ``__removeSlave``: forget a registered agent, rescind its offers and
        tell the frameworks about its tasks and about the agent (``FAILURE``).

        With an ``unreachable_time`` the tasks may come back (TASK_UNREACHABLE / LOST,
        kept as unreachable tasks); without one they are gone (TASK_GONE_BY_OPERATOR /
        LOST).
        """
        if self.books.agents.get(agent.id) is not agent:
            return
        del self.books.agents[agent.id]
        agent.scope.cancel()
        agent.outbox.close()
        self.allocator.rescind_offers_on(agent.id)
        for (framework_id, task_id), task in list(agent.tasks.items()):
            owner = self.books.frameworks.get(framework_id)
            if owner is None:
                continue
            owner.tasks.pop(task_id, None)
            task.freed = True
            if task.state in TERMINAL_STATES:
                owner.completed_tasks.append(task)
                continue
            if unreachable_time is not None:
                state = "TASK_UNREACHABLE" if owner.partition_aware else "TASK_LOST"
                reason = "REASON_AGENT_REMOVED"
                task.state = "TASK_UNREACHABLE"
                task.unreachable_time = unreachable_time
                owner.unreachable_tasks[task_id] = task
            else:
                state = "TASK_GONE_BY_OPERATOR" if owner.partition_aware else "TASK_LOST"
                reason = (
                    "REASON_AGENT_REMOVED_BY_OPERATOR"
                    if owner.partition_aware
                    else "REASON_AGENT_REMOVED"
                )
                task.state = state
                owner.completed_tasks.append(task)
            status = master_status(
                task_id,
                state,
                reason=reason,
                message=message,
                agent_id=agent.id,
                executor_id=task.executor_id,
            )
            if unreachable_time is not None:
                status["unreachable_time"] = {"nanoseconds": int(unreachable_time * 1e9)}
            task.status_update_state = state
            owner.send(update_event(status))
        agent.tasks.clear()
        for executor in list(agent.executors.values()):
            self.books.remove_executor(executor)
        agent.executors.clear()
        agent.allocated = Resources()
        self._agent_lost(agent.id)

    def _agent_lost(self, agent_id: str) -> None:
        """Mesos's ``sendSlaveLost``: ``FAILURE{agent_id}`` to every connected framework."""
        for framework in self.books.frameworks.values():
            framework.send({"type": "FAILURE", "failure": {"agent_id": mesos_id(agent_id)}})
        self._changed()
        self.trigger.request()

    async def expire_recovered(self) -> None:
        """Mesos's ``recoveredSlavesTimeout``: agents of the registry that have not
        re-registered within ``--agent_reregister_timeout`` of this master's start are
        marked unreachable.

        This master never knew their tasks, so nothing is reported but ``FAILURE``; a
        framework that reconciles them gets TASK_UNREACHABLE / TASK_LOST from then on.
        Agents in the middle of re-registering are left to finish.
        """
        await trio.sleep(self.options.agent_reregister_timeout)
        missing = [
            info for agent_id, info in self.books.recovered_agents.items()
            if agent_id not in self._transitioning
        ]  # fmt: skip
        if not missing:
            return
        now = time.time()
        ids = {str(info["id"]["value"]) for info in missing}
        self._transitioning |= ids
        try:
            await self.registry.mark_unreachable(missing, now)
        finally:
            self._transitioning -= ids
        for info in missing:
            agent_id = str(info["id"]["value"])
            del self.books.recovered_agents[agent_id]
            self.books.unreachable_agents[agent_id] = UnreachableAgent(info, now)
            log.warning(
                "agent %s (%s) is unreachable: did not re-register within %ss after master "
                "failover",
                agent_id,
                info.get("hostname"),
                self.options.agent_reregister_timeout,
            )
            self._agent_lost(agent_id)

    def _next_agent_id(self) -> str:
        return f"{self.identity.id}-S{next(self._agent_numbers)}"
