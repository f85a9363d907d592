"""The master's options and records: frameworks, agents, tasks, executors, offers.

Records only know themselves (and how to message their framework or agent); keeping
them consistent with each other is :mod:`.books`' job.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from marathon_mesos_local import MESOS_VERSION
from marathon_mesos_local.master.credentials import FrameworkAuthenticator
from marathon_mesos_local.master.registry import AgentInfo
from marathon_mesos_local.messages import id_value, mesos_id
from marathon_mesos_local.resources import Resources

__all__ = [
    "STREAM_BUFFER",
    "Agent",
    "AllocationTrigger",
    "Executor",
    "Framework",
    "MasterIdentity",
    "MasterOptions",
    "Offer",
    "SimulatedAgentProtocol",
    "Subscription",
    "Task",
    "encode_record",
    "master_status",
    "update_event",
]

log = logging.getLogger(__name__)

#: Mesos's ``DEFAULT_HEARTBEAT_INTERVAL``; not configurable in real Mesos.
HEARTBEAT_INTERVAL = 15.0
#: Mesos's default ``--allocation_interval``.
ALLOCATION_INTERVAL = 1.0
#: The allocator offers an agent only if at least this much is free (``MIN_CPUS``/``MIN_MEM``).
MIN_CPUS = 0.01
MIN_MEM = 32.0
#: Completed tasks and frameworks kept for ``/master/state``.
MAX_COMPLETED = 1000


@attrs.frozen(kw_only=True)
class MasterOptions:
    """How the master listens and paces itself."""

    host: str = "127.0.0.1"
    port: int = 5050
    #: Reported in ``SUBSCRIBED``; lower it only in tests.
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    allocation_interval: float = ALLOCATION_INTERVAL
    #: Mesos's ``--agent_ping_timeout``: how often agents are pinged, and how long a
    #: ping may take before it counts as missed.
    agent_ping_timeout: float = 15.0
    #: Mesos's ``--max_agent_ping_timeouts``: missed pings in a row before an agent
    #: is marked unreachable.
    max_agent_ping_timeouts: int = 5
    #: Mesos's ``--offer_timeout``: offers are rescinded after this long (None: never).
    offer_timeout: float | None = None
    #: Mesos's ``--agent_reregister_timeout``: how long a master started on an existing
    #: registry waits for its agents to re-register before it marks them unreachable.
    agent_reregister_timeout: float = 600.0
    #: Where the registry is kept (``registry.json``); None keeps it in memory only.
    work_dir: Path | None = None
    #: ``--authenticate_http_frameworks`` with ``--credentials``: who may call the
    #: scheduler API (None: anyone, Mesos's default).
    framework_authenticator: FrameworkAuthenticator | None = None


@attrs.define(eq=False)
class MasterIdentity:
    """Who this master is and where it listens (the port is known once it is bound)."""

    host: str
    port: int
    id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    start_time: float = attrs.field(factory=time.time)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> str:
        return f"master@{self.host}:{self.port}"

    @property
    def info(self) -> dict[str, Any]:
        """Its ``MasterInfo``."""
        host = self.host
        octets = [int(o) for o in host.split(".")] if host.count(".") == 3 else [127, 0, 0, 1]
        ip = octets[0] | octets[1] << 8 | octets[2] << 16 | octets[3] << 24
        return {
            "id": self.id,
            "ip": ip,
            "port": self.port,
            "pid": self.pid,
            "hostname": host,
            "version": MESOS_VERSION,
            "address": {"hostname": host, "ip": host, "port": self.port},
            "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}],
        }


def encode_record(event: Mapping[str, Any]) -> bytes:
    """One RecordIO record: ``<decimal length>\\n<json>``."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return str(len(body)).encode() + b"\n" + body


class SimulatedAgentProtocol(Protocol):
    """An in-process agent: receives what a real agent would get over HTTP."""

    def handle(self, action: str, body: dict[str, Any]) -> None: ...


#: Events queued for a subscriber before it counts as too slow and loses its stream
#: (reconciliation answers aside, see :class:`Subscription`).
STREAM_BUFFER = 10_000


@attrs.define(eq=False)
class Subscription:
    """The event stream of one SUBSCRIBE call.

    The channel is unbounded; a subscriber whose backlog reaches ``STREAM_BUFFER``
    events loses its stream. Answers to RECONCILE are not part of that backlog: the
    framework asked for them (one per task it runs, 100,000 for a large Marathon, in
    one call) and takes them at its own pace, as from Mesos, which cuts no slow
    reader. Counted, a reconciliation of more tasks than the buffer cut every stream
    at once, and the re-subscription's reconciliation cut the next one.
    """

    stream_id: str
    channel: trio.MemorySendChannel[tuple[bytes, bool]]
    closed: bool = False
    #: Reconciliation answers queued and not yet written to the subscriber.
    answers_queued: int = 0

    def event(self, event: Mapping[str, Any], *, answer: bool = False) -> None:
        """Queue an event (``answer``: to a RECONCILE); a subscriber too slow to keep up
        loses its stream."""
        if self.closed:
            return
        backlog = self.channel.statistics().current_buffer_used - self.answers_queued
        if not answer and backlog >= STREAM_BUFFER:
            log.warning("subscriber of stream %s is too slow; closing it", self.stream_id)
            self.close()
            return
        try:
            self.channel.send_nowait((encode_record(event), answer))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = True
            return
        self.answers_queued += answer

    def taken(self, answer: bool) -> None:
        """One queued event was taken for writing."""
        self.answers_queued -= answer

    def close(self) -> None:
        self.closed = True
        self.channel.close()


@attrs.define(eq=False)
class Task:
    """A task as the master tracks it."""

    info: dict[str, Any]
    framework_id: str
    agent_id: str
    resources: Resources
    state: str = "TASK_STAGING"
    #: State and uuid of the latest update forwarded to the framework.
    status_update_state: str | None = None
    status_update_uuid: str | None = None
    latest_status: dict[str, Any] | None = None
    statuses: list[dict[str, Any]] = attrs.field(factory=list)
    freed: bool = False
    #: When its agent was marked unreachable (epoch seconds), else None.
    unreachable_time: float | None = None

    @property
    def id(self) -> str:
        return str(self.info["task_id"]["value"])

    @property
    def executor_id(self) -> str | None:
        """The executor of a task-group task; None for a command task."""
        return id_value(self.info.get("executor", {}).get("executor_id"))


@attrs.define(eq=False)
class Executor:
    """An executor the master tracks (the default executor of task groups).

    Its resources are held from the launch of its first task group until its agent
    reports that it exited (or the agent or the framework is removed), as in Mesos.
    """

    info: dict[str, Any]
    framework_id: str
    agent_id: str
    resources: Resources

    @property
    def id(self) -> str:
        return str(self.info["executor_id"]["value"])


@attrs.define(eq=False)
class Offer:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources
    #: Cancels the ``--offer_timeout`` timer, if one runs.
    timer: trio.CancelScope | None = None


@attrs.define(eq=False)
class Agent:
    """A registered agent: where it listens, what it has, what it runs."""

    id: str
    hostname: str
    port: int
    pid: int | None
    total: Resources
    attributes: list[dict[str, Any]]
    registered_time: float
    outbox: trio.MemorySendChannel[tuple[str, dict[str, Any]]]
    #: Resources used by tasks and executors or held by offers.
    allocated: Resources = attrs.field(factory=Resources)
    tasks: dict[tuple[str, str], Task] = attrs.field(factory=dict)
    #: (framework id, executor id) -> executor.
    executors: dict[tuple[str, str], Executor] = attrs.field(factory=dict)
    reregistered_time: float | None = None
    #: Stops the agent's pinger and outbox sender when it is replaced or removed.
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    #: An in-process simulated agent (no process, no pings), else None.
    simulated: SimulatedAgentProtocol | None = None

    @property
    def url(self) -> str:
        return f"http://{self.hostname}:{self.port}"

    @property
    def info(self) -> AgentInfo:
        """Its ``SlaveInfo``, as the registry keeps it."""
        return {
            "id": mesos_id(self.id),
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.total.to_json(),
            "attributes": self.attributes,
        }

    @property
    def free(self) -> Resources:
        return (self.total - self.allocated).pruned()

    def send(self, action: str, body: dict[str, Any]) -> None:
        """Queue a message for the agent (its outbox keeps the order), or hand it to a
        simulated agent at once."""
        if self.simulated is not None:
            self.simulated.handle(action, body)
            return
        try:
            self.outbox.send_nowait((action, body))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            log.info("agent %s is gone; %s dropped", self.id, action)


@attrs.define(eq=False)
class Framework:
    """A framework known to the master, connected or not."""

    id: str
    info: dict[str, Any]
    registered_time: float
    stream: Subscription | None = None
    suppressed: set[str] = attrs.field(factory=set)
    #: (role, agent id) -> (refused resources, expiry time).
    filters: dict[tuple[str, str], tuple[Resources, float]] = attrs.field(factory=dict)
    tasks: dict[str, Task] = attrs.field(factory=dict)
    completed_tasks: deque[Task] = attrs.field(factory=lambda: deque(maxlen=MAX_COMPLETED))
    #: Tasks on unreachable agents (reported TASK_UNREACHABLE or TASK_LOST).
    unreachable_tasks: dict[str, Task] = attrs.field(factory=dict)
    offers: dict[str, Offer] = attrs.field(factory=dict)
    #: (agent id, executor id) -> executor.
    executors: dict[tuple[str, str], Executor] = attrs.field(factory=dict)
    unregistered_time: float | None = None
    reregistered_time: float | None = None
    #: Counts disconnections, so a failover timer knows whether it is still current.
    disconnections: int = 0
    #: Known from a re-registered agent after a master failover, not yet re-subscribed.
    recovered: bool = False

    @property
    def capabilities(self) -> set[str]:
        return {c.get("type", "") for c in self.info.get("capabilities", [])}

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def roles(self) -> list[str]:
        if "MULTI_ROLE" in self.capabilities:
            return list(self.info.get("roles", []))
        return [self.info.get("role", "*")]

    @property
    def connected(self) -> bool:
        return self.stream is not None

    def send(self, event: Mapping[str, Any], *, answer: bool = False) -> None:
        if self.stream is not None:
            self.stream.event(event, answer=answer)


def master_status(
    task_id: str,
    state: str,
    *,
    reason: str | None = None,
    message: str | None = None,
    agent_id: str | None = None,
    executor_id: str | None = None,
    source: str = "SOURCE_MASTER",
) -> dict[str, Any]:
    """A master-generated TaskStatus: sent once, no uuid, nothing to acknowledge."""
    status: dict[str, Any] = {"task_id": mesos_id(task_id), "state": state, "source": source}
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    if agent_id:
        status["agent_id"] = mesos_id(agent_id)
    if executor_id:
        status["executor_id"] = mesos_id(executor_id)
    status["timestamp"] = time.time()
    return status


def update_event(status: Mapping[str, Any]) -> dict[str, Any]:
    """The UPDATE event of a status."""
    return {"type": "UPDATE", "update": {"status": status}}


class AllocationTrigger:
    """Requests for an allocation run: of some agents' resources, or of everything.

    Whoever changes what is free or who may get it asks; the allocator's loop waits.
    """

    def __init__(self) -> None:
        self._wakeup = trio.Event()
        self._dirty_agents: set[str] = set()
        self._everything = True

    def request(self, agent_id: str | None = None) -> None:
        """Ask for an allocation: of one agent's resources, or of everything."""
        if agent_id is None:
            self._everything = True
        else:
            self._dirty_agents.add(agent_id)
        self._wakeup.set()

    async def next_run(self, interval: float) -> set[str] | None:
        """Wait for a request, at most ``interval``; the agents to allocate (None: all,
        as after a whole interval without requests)."""
        with trio.move_on_after(interval) as timer:
            await self._wakeup.wait()
        self._wakeup = trio.Event()
        everything = timer.cancelled_caught or self._everything
        dirty, self._dirty_agents, self._everything = self._dirty_agents, set(), False
        return None if everything else dirty
