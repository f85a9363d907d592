"""The Mesos master: the v1 scheduler HTTP API, an allocator, and the agent registry.

Everything the master knows lives in plain objects mutated only from trio tasks of
one run (no locks needed). Scheduler calls are checked in the order real Mesos 1.x
checks them (``../shared/reference/mesos/v1-scheduler-api.md`` §1-§3) and answered
with the same status codes and plain-text bodies; their effects are applied before
the ``202`` is sent and reported as events on the framework's RecordIO stream.

Master-to-agent traffic (libprocess in real Mesos) is JSON over HTTP on loopback:
agents ``POST /_local/agents/register``, ``/_local/agents/unregister``,
``/_local/agents/status`` and ``/_local/agents/executor_exited``; the master sends
``run_task``, ``run_task_group``, ``kill_task``, ``acknowledge``, ``shutdown_executor``,
``shutdown_framework`` and ``framework_message`` to each agent through one ordered
outbox per agent.

Failover: the admitted and unreachable agents are kept in a registry (see
:mod:`.registry`). A master started on an existing registry waits
``--agent_reregister_timeout`` for the agents in it to re-register with their tasks
and marks the others unreachable; frameworks come back through the agents that run
their tasks and by re-subscribing with their ids, as in Mesos's ``Master::recover``.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import attrs
import httpx
import trio

from marathon_mesos_local import MESOS_VERSION
from marathon_mesos_local.http import (
    JSON,
    PROTOBUF,
    Request,
    Response,
    Send,
    accepts,
    check_post,
    serve_http,
)
from marathon_mesos_local.operator import handle_operator
from marathon_mesos_local.registry import AgentInfo, Registry, UnreachableAgent
from marathon_mesos_local.resources import ResourceError, Resources, attributes_to_json
from marathon_mesos_local.schema import SchemaError, check_call

__all__ = ["TERMINAL_STATES", "Master", "MasterOptions"]

log = logging.getLogger(__name__)

#: States after which a task never runs again (``protobuf_utils.cpp isTerminalState``).
TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
        "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR",
    }
)  # fmt: skip
#: Mesos's ``DEFAULT_HEARTBEAT_INTERVAL``; not configurable in real Mesos.
HEARTBEAT_INTERVAL = 15.0
#: Mesos's default ``--allocation_interval``.
ALLOCATION_INTERVAL = 1.0
#: Pause after an allocation run, so that a burst of changes is allocated together.
ALLOCATION_BATCH = 0.002
#: ``Filters.refuse_seconds`` default and cap (365 days).
DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0
#: The allocator offers an agent only if at least this much is free (``MIN_CPUS``/``MIN_MEM``).
MIN_CPUS = 0.01
MIN_MEM = 32.0
#: Events queued for a slow subscriber before its stream is closed.
STREAM_BUFFER = 10_000
#: Completed tasks and frameworks kept for ``/master/state``.
MAX_COMPLETED = 1000

#: Calls that need their sub-message (``validation.cpp``); others may omit it.
_NEEDS_BODY = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
}
#: Characters Mesos's ``validateID`` refuses in task and executor ids.
_BAD_ID = re.compile(r"[/\\\x00-\x1f\x7f]")
#: Longest id Mesos accepts (``NAME_MAX``).
MAX_ID_LENGTH = 255
#: Offer operations this master applies; the others are refused (see ``_refuse_operation``).
SUPPORTED_OPERATIONS = frozenset({"LAUNCH", "LAUNCH_GROUP"})


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


def _now() -> float:
    return time.time()


def _id(value: str) -> dict[str, str]:
    return {"value": value}


def _value(message: Mapping[str, Any] | None) -> str | None:
    return None if not message else message.get("value")


def encode_record(event: Mapping[str, Any]) -> bytes:
    """One RecordIO record: ``<decimal length>\\n<json>``."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return str(len(body)).encode() + b"\n" + body


class SimulatedAgentProtocol(Protocol):
    """An in-process agent: receives what a real agent would get over HTTP."""

    def handle(self, action: str, body: dict[str, Any]) -> None: ...


@attrs.define(eq=False)
class Subscription:
    """The event stream of one SUBSCRIBE call."""

    stream_id: str
    channel: trio.MemorySendChannel[bytes]
    closed: bool = False

    def event(self, event: Mapping[str, Any]) -> None:
        """Queue an event; a subscriber too slow to keep up loses its stream."""
        if self.closed:
            return
        try:
            self.channel.send_nowait(encode_record(event))
        except trio.WouldBlock:
            log.warning("subscriber of stream %s is too slow; closing it", self.stream_id)
            self.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = True

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
        return _value(self.info.get("executor", {}).get("executor_id"))


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
            "id": _id(self.id),
            "hostname": self.hostname,
            "port": self.port,
            "resources": self.total.to_json(),
            "attributes": self.attributes,
        }

    @property
    def free(self) -> Resources:
        return (self.total - self.allocated).pruned()


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

    def send(self, event: Mapping[str, Any]) -> None:
        if self.stream is not None:
            self.stream.event(event)


def _status(
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
    status: dict[str, Any] = {"task_id": _id(task_id), "state": state, "source": source}
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    if agent_id:
        status["agent_id"] = _id(agent_id)
    if executor_id:
        status["executor_id"] = _id(executor_id)
    status["timestamp"] = _now()
    return status


def _update(status: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "UPDATE", "update": {"status": status}}


def _launched_tasks(operation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The TaskInfos of a LAUNCH or LAUNCH_GROUP operation (none for the others)."""
    if operation.get("type") == "LAUNCH":
        return list(operation.get("launch", {}).get("task_infos", []))
    if operation.get("type") == "LAUNCH_GROUP":
        return list(operation.get("launch_group", {}).get("task_group", {}).get("tasks", []))
    return []


def _allocated(resources: Iterable[Mapping[str, Any]], role: str) -> list[dict[str, Any]]:
    """Resources with the offer's ``allocation_info`` where the framework left it out."""
    return [{"allocation_info": {"role": role}, **r} for r in resources]


def _id_problem(value: str) -> str | None:
    """Mesos's ``common::validation::validateID`` (task and executor ids)."""
    if not value:
        return "ID must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"ID must not be greater than {MAX_ID_LENGTH} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if _BAD_ID.search(value):
        return f"'{value}' contains invalid characters"
    return None


def _number(value: float | None) -> str:
    """A double as Mesos's ``stringify`` prints it (``None`` when absent)."""
    return "None" if value is None else f"{value:g}"


def _megabytes(value: float) -> str:
    """Megabytes as stout's ``Bytes`` prints them: the largest unit that loses nothing."""
    amount = int(value * 1024 * 1024)
    if amount == 0:
        return "0B"
    for unit in ("B", "KB", "MB", "GB"):
        if amount % 1024 != 0:
            return f"{amount}{unit}"
        amount //= 1024
    return f"{amount}TB"


def _overlapping(parts: Iterable[Resources]) -> bool:
    """Whether two of ``parts`` claim the same port (range) or set item."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    items: dict[str, set[str]] = {}
    for part in parts:
        for name, claimed in part.ranges.items():
            earlier = ranges.setdefault(name, [])
            if any(b <= e2 and b2 <= e for b, e in claimed for b2, e2 in earlier):
                return True
            earlier.extend(claimed)
        for name, members in part.sets.items():
            seen = items.setdefault(name, set())
            if seen & members:
                return True
            seen |= members
    return False


class Master:
    """One Mesos master: call :meth:`run` in a nursery to serve it."""

    def __init__(self, options: MasterOptions | None = None) -> None:
        self.options = options or MasterOptions()
        self.id = str(uuid.uuid4())
        self.port = self.options.port
        self.start_time = _now()
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=MAX_COMPLETED)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        #: Raises RegistryError for a registry file this master cannot use.
        self.registry = Registry.open(self.options.work_dir)
        #: Agents of the registry that have not re-registered since this master started.
        self.recovered_agents: dict[str, AgentInfo] = dict(self.registry.admitted)
        #: Agents marked unreachable, until they re-register.
        self.unreachable_agents: dict[str, UnreachableAgent] = dict(self.registry.unreachable)
        #: Agents with a registry change under way (re-registering, being marked
        #: unreachable or removed): other changes to them wait until it is done.
        self._transitioning: set[str] = set()
        self._counters = {"framework": 0, "offer": 0, "agent": 0}
        self._wakeup = trio.Event()
        self._dirty_agents: set[str] = set()
        self._allocate_all = True
        self._agents_changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; reports the bound port once the API answers."""
        timeout = httpx.Timeout(10.0, connect=5.0)
        async with httpx.AsyncClient(timeout=timeout) as client, trio.open_nursery() as nursery:
            self._client = client
            self._nursery = nursery
            self.port = await nursery.start(
                partial(serve_http, self.handle, host=self.options.host, port=self.options.port)
            )
            nursery.start_soon(self._allocation_loop)
            log.info("mesos master %s listening on %s", self.id, self.url)
            if self.recovered_agents:
                log.info(
                    "recovered %d agent(s) from the registry; allowing %ss for agents to "
                    "re-register",
                    len(self.recovered_agents),
                    self.options.agent_reregister_timeout,
                )
                nursery.start_soon(self._recovered_agents_timeout)
            task_status.started(self.port)

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.port}"

    async def wait_agents(self, count: int) -> None:
        """Return once at least ``count`` agents are registered."""
        while len(self.agents) < count:
            await self._agents_changed.wait()

    async def agents_changed(self) -> None:
        """Wait for the next change of the agent registry (register, re-register, loss)."""
        await self._agents_changed.wait()

    def _changed(self) -> None:
        self._agents_changed.set()
        self._agents_changed = trio.Event()

    def _next_id(self, kind: str) -> str:
        n = self._counters[kind]
        self._counters[kind] += 1
        if kind == "framework":
            return f"{self.id}-{n:04d}"
        return f"{self.id}-{'O' if kind == 'offer' else 'S'}{n}"

    @property
    def master_info(self) -> dict[str, Any]:
        host = self.options.host
        octets = [int(o) for o in host.split(".")] if host.count(".") == 3 else [127, 0, 0, 1]
        ip = octets[0] | octets[1] << 8 | octets[2] << 16 | octets[3] << 24
        return {
            "id": self.id,
            "ip": ip,
            "port": self.port,
            "pid": f"master@{host}:{self.port}",
            "hostname": host,
            "version": MESOS_VERSION,
            "address": {"hostname": host, "ip": host, "port": self.port},
            "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}],
        }

    # -- HTTP routing --------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path in ("/api/v1/scheduler", "/master/api/v1/scheduler"):
            return self._scheduler(request)
        if path in ("/api/v1", "/master/api/v1"):
            return handle_operator(self, request)
        if path in ("/health", "/master/health"):
            return Response(200)
        if path in ("/version", "/master/version"):
            return Response.json(
                {"version": MESOS_VERSION, "build_date": "", "build_time": 0.0, "build_user": ""}
            )
        if path in ("/master/state", "/state"):
            return Response.json(self.state())
        if path in ("/master/frameworks", "/frameworks"):
            state = self.state()
            return Response.json(
                {
                    "frameworks": state["frameworks"],
                    "completed_frameworks": state["completed_frameworks"],
                    "unregistered_frameworks": [],
                }
            )
        if path in ("/master/slaves", "/slaves"):
            state = self.state()
            return Response.json(
                {"slaves": state["slaves"], "recovered_slaves": state["recovered_slaves"]}
            )
        if path in ("/redirect", "/master/redirect"):
            return Response(307, headers=[("Location", f"//{self.options.host}:{self.port}")])
        if path == "/_local/master":
            return Response.json({"id": self.id})
        if path == "/_local/agents/register" and request.method == "POST":
            return await self._register_agent(request)
        if path == "/_local/agents/unregister" and request.method == "POST":
            return await self._unregister_agent(request)
        if path == "/_local/agents/status" and request.method == "POST":
            return self._agent_status(request)
        if path == "/_local/agents/executor_exited" and request.method == "POST":
            return self._agent_executor_exited(request)
        return Response(404)

    # -- the scheduler API ---------------------------------------------------------

    def _scheduler(self, request: Request) -> Response:
        if (refused := check_post(request)) is not None:
            return refused
        content_type = request.headers["content-type"]
        if content_type == PROTOBUF:
            # Real Mesos takes binary Calls too; this master speaks JSON only.
            return Response.text(
                415, f"Expecting 'Content-Type' of {JSON} ({PROTOBUF} is not supported here)"
            )
        if content_type != JSON:
            return Response.text(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            return Response.text(400, f"Failed to parse body into JSON: {exc}")
        try:
            call = check_call(body)
        except SchemaError as exc:
            return Response.text(400, f"Failed to convert JSON into Call protobuf: {exc}")
        error = self._validate_call(call)
        if error:
            return Response.text(400, f"Failed to validate scheduler::Call: {error}")
        kind = call["type"]
        stream_id = request.headers.get("mesos-stream-id")
        if kind == "SUBSCRIBE":
            if not accepts(request.headers.get("accept"), JSON):
                return Response.text(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
            if stream_id is not None:
                return Response.text(
                    400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"
                )
            return self._subscribe(call)
        framework_id = call["framework_id"]["value"]
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return Response.text(400, "Framework cannot be found")
        if framework.stream is None:
            return Response.text(403, "Framework is not subscribed")
        if stream_id is None:
            return Response.text(
                400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        if stream_id != framework.stream.stream_id:
            return Response.text(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the "
                f"stream ID currently associated with framework ID {framework_id}",
            )
        handler = getattr(self, f"_call_{kind.lower()}", None)
        if kind == "UNKNOWN":
            return Response(501)
        if handler is None:
            log.info("ignoring %s call of framework %s", kind, framework_id)
            return Response(202)
        result: Response | None = handler(framework, call)
        return result or Response(202)

    def _validate_call(self, call: Mapping[str, Any]) -> str | None:
        kind = call.get("type")
        if kind is None:
            return "Expecting 'type' to be present"
        if kind == "SUBSCRIBE":
            if "subscribe" not in call:
                return "Expecting 'subscribe' to be present"
            info_id = _value(call["subscribe"]["framework_info"].get("id"))
            if info_id != _value(call.get("framework_id")):
                return "'framework_id' differs from 'subscribe.framework_info.id'"
            return None
        if "framework_id" not in call:
            return "Expecting 'framework_id' to be present"
        field = _NEEDS_BODY.get(kind)
        if field is not None and field not in call:
            return f"Expecting '{field}' to be present"
        if kind in ("ACKNOWLEDGE", "ACKNOWLEDGE_OPERATION_STATUS"):
            raw = base64.b64decode(call[field or ""]["uuid"])
            if len(raw) != 16:
                return f"Invalid UUID: expected 16 bytes, got {len(raw)}"
        if kind == "ACKNOWLEDGE_OPERATION_STATUS" and "agent_id" not in call[field or ""]:
            return "Expecting 'agent_id' to be present"
        if kind == "UPDATE_FRAMEWORK":
            info_id = _value(call["update_framework"]["framework_info"].get("id"))
            if info_id != _value(call["framework_id"]):
                return "'framework_id' differs from 'update_framework.framework_info.id'"
        return None

    # -- SUBSCRIBE -------------------------------------------------------------------

    def _subscribe(self, call: Mapping[str, Any]) -> Response:
        subscribe = call["subscribe"]
        info = dict(subscribe["framework_info"])
        suppressed = list(subscribe.get("suppressed_roles", []))
        framework_id = _value(info.get("id"))
        send, receive = trio.open_memory_channel[bytes](STREAM_BUFFER)
        subscription = Subscription(str(uuid.uuid4()), send)
        headers = [("Content-Type", JSON), ("Mesos-Stream-Id", subscription.stream_id)]

        error = self._framework_info_error(info, suppressed)
        if error is None and framework_id in self.removed_framework_ids:
            error = "Framework has been removed"
        if error is not None:
            subscription.event({"type": "ERROR", "error": {"message": error}})
            subscription.close()
            return Response(200, headers=headers, stream=partial(self._pump, receive))

        framework = self.frameworks.get(framework_id) if framework_id else None
        if framework is None:
            failover = framework_id is not None
            if framework_id is None:
                framework_id = self._next_id("framework")
            info["id"] = _id(framework_id)
            framework = Framework(framework_id, info, _now())
            self.frameworks[framework_id] = framework
            if failover:
                # An id this master never saw: a framework of the master before a
                # failover, none of whose agents has re-registered yet.
                framework.reregistered_time = framework.registered_time
                log.info("framework %s (%s) re-subscribed after a master failover",
                         framework_id, info.get("name"))  # fmt: skip
            else:
                log.info("framework %s (%s) subscribed", framework_id, info.get("name"))
        else:
            if framework.stream is not None:
                old = framework.stream
                framework.stream = None
                old.event({"type": "ERROR", "error": {"message": "Framework failed over"}})
                old.close()
            # Offers of the old connection vanish without RESCIND.
            for offer in list(framework.offers.values()):
                self._discard_offer(framework, offer)
            # user and checkpoint cannot change on re-subscribe; the rest can.
            info["user"] = framework.info["user"]
            info["checkpoint"] = framework.info.get("checkpoint", False)
            info["id"] = _id(framework.id)
            framework.info = info
            framework.reregistered_time = _now()
            if framework.recovered:
                # Known from its agents since a master failover; when it first
                # registered is not kept across failovers, so Mesos says "now".
                framework.recovered = False
                framework.registered_time = framework.reregistered_time
            log.info("framework %s re-subscribed", framework_id)
        framework.stream = subscription
        framework.unregistered_time = None
        framework.suppressed = set(suppressed)
        subscription.event(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": _id(framework.id),
                    "heartbeat_interval_seconds": float(self.options.heartbeat_interval),
                    "master_info": self.master_info,
                },
            }
        )
        subscription.event({"type": "HEARTBEAT"})  # Mesos's heartbeater starts with no delay
        self._trigger()
        return Response(
            200,
            headers=headers,
            stream=partial(self._serve_stream, framework, subscription, receive),
        )

    @staticmethod
    def _framework_info_error(info: Mapping[str, Any], suppressed: Iterable[str]) -> str | None:
        capabilities = {c.get("type") for c in info.get("capabilities", [])}
        roles = list(info.get("roles", []))
        if "MULTI_ROLE" in capabilities:
            if "role" in info:
                return "'FrameworkInfo.role' must not be set when MULTI_ROLE is set"
        elif roles:
            return "'FrameworkInfo.roles' is set but MULTI_ROLE capability is not"
        else:
            roles = [info.get("role", "*")]
        if len(set(roles)) != len(roles):
            return f"'FrameworkInfo.roles' contains duplicate items: {roles}"
        for role in roles:
            if role in ("", ".", "..") or role.startswith("-") or re.search(r"[\s/\\]", role):
                return f"Invalid role '{role}'"
        for role in suppressed:
            if role not in roles:
                return f"Suppressed role '{role}' is not contained in the list of roles"
        timeout = info.get("failover_timeout", 0.0)
        if not math.isfinite(timeout) or timeout < 0 or timeout > 1e12:
            return f"Illegal failover_timeout {timeout}"
        return None

    async def _pump(self, receive: trio.MemoryReceiveChannel[bytes], send: Send) -> None:
        async with receive:
            async for chunk in receive:
                await send(chunk)

    async def _serve_stream(
        self,
        framework: Framework,
        subscription: Subscription,
        receive: trio.MemoryReceiveChannel[bytes],
        send: Send,
    ) -> None:
        """Write the stream with heartbeats; disconnect the framework when it ends."""
        try:
            async with trio.open_nursery() as nursery:

                async def heartbeats() -> None:
                    while True:  # the first one was queued right after SUBSCRIBED
                        await trio.sleep(self.options.heartbeat_interval)
                        subscription.event({"type": "HEARTBEAT"})

                nursery.start_soon(heartbeats)
                await self._pump(receive, send)
                nursery.cancel_scope.cancel()
        finally:
            subscription.closed = True
            if framework.stream is subscription:
                self._disconnected(framework)

    def _disconnected(self, framework: Framework) -> None:
        log.info("framework %s disconnected", framework.id)
        framework.stream = None
        framework.unregistered_time = _now()
        framework.filters.clear()  # the allocator drops them on deactivation
        for offer in list(framework.offers.values()):
            self._discard_offer(framework, offer)
        framework.disconnections += 1
        if self._nursery is not None:
            self._nursery.start_soon(
                self._failover_timer,
                framework,
                framework.disconnections,
                float(framework.info.get("failover_timeout", 0.0)),
            )
        self._trigger()

    async def _failover_timer(self, framework: Framework, generation: int, timeout: float) -> None:
        """Remove a framework that has not re-subscribed within its ``failover_timeout``."""
        await trio.sleep(timeout)
        if (
            framework.stream is None
            and framework.disconnections == generation
            and self.frameworks.get(framework.id) is framework
        ):
            log.info("framework %s failover timeout (%ss) expired", framework.id, timeout)
            self.remove_framework(framework)

    # -- calls -------------------------------------------------------------------------

    def _call_teardown(self, framework: Framework, call: Mapping[str, Any]) -> None:
        self.remove_framework(framework)

    def remove_framework(self, framework: Framework) -> None:
        """Forget a framework: kill its tasks, drop its offers, close its stream."""
        log.info("removing framework %s", framework.id)
        for offer in list(framework.offers.values()):
            self._discard_offer(framework, offer)
        agents = set()
        for task in list(framework.tasks.values()):
            self._free(task)
            agent = self.agents.get(task.agent_id)
            if agent is not None:
                agent.tasks.pop((framework.id, task.id), None)
                agents.add(agent)
            framework.completed_tasks.append(task)
        framework.tasks.clear()
        framework.completed_tasks.extend(framework.unreachable_tasks.values())
        framework.unreachable_tasks.clear()
        for executor in list(framework.executors.values()):
            if executor.agent_id in self.agents:
                agents.add(self.agents[executor.agent_id])
            self._remove_executor(executor)
        for agent in agents:
            self._to_agent(agent, "shutdown_framework", {"framework_id": framework.id})
        if framework.stream is not None:
            stream, framework.stream = framework.stream, None
            stream.close()
        framework.unregistered_time = _now()
        self.frameworks.pop(framework.id, None)
        self.removed_framework_ids.add(framework.id)
        self.completed_frameworks.append(framework)
        self._trigger()

    def _call_update_framework(self, framework: Framework, call: Mapping[str, Any]) -> Response:
        update = call["update_framework"]
        info = dict(update["framework_info"])
        suppressed = list(update.get("suppressed_roles", []))
        error = self._framework_info_error(info, suppressed)
        for key in ("principal", "user", "checkpoint"):
            if info.get(key) != framework.info.get(key):
                error = error or f"Updating 'FrameworkInfo.{key}' is unsupported"
        if error:
            return Response.text(400, error)
        old_roles = set(framework.roles)
        framework.info = info
        for offer in list(framework.offers.values()):
            if offer.role not in framework.roles:
                self._rescind(framework, offer)
        for role in framework.suppressed - set(suppressed):
            self._clear_filters(framework, role)
        framework.suppressed = set(suppressed)
        if set(framework.roles) != old_roles:
            self._trigger()
        return Response(200)

    def _call_revive(self, framework: Framework, call: Mapping[str, Any]) -> None:
        roles = call.get("revive", {}).get("roles") or framework.roles
        for role in roles:
            framework.suppressed.discard(role)
            self._clear_filters(framework, role)
        self._trigger()

    def _call_suppress(self, framework: Framework, call: Mapping[str, Any]) -> None:
        roles = call.get("suppress", {}).get("roles") or framework.roles
        framework.suppressed.update(r for r in roles if r in framework.roles)

    def _clear_filters(self, framework: Framework, role: str) -> None:
        for key in [k for k in framework.filters if k[0] == role]:
            del framework.filters[key]

    def _call_decline(self, framework: Framework, call: Mapping[str, Any]) -> None:
        decline = call["decline"]
        refuse = self._refuse_seconds(decline.get("filters"))
        for offer_id in decline.get("offer_ids", []):
            offer = framework.offers.get(offer_id["value"])
            if offer is None:
                continue
            self._discard_offer(framework, offer)
            self._add_filter(framework, offer.role, offer.agent_id, offer.resources, refuse)

    @staticmethod
    def _refuse_seconds(filters: Mapping[str, Any] | None) -> float:
        seconds = (filters or {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS)
        if math.isnan(seconds) or seconds < 0:
            return DEFAULT_REFUSE_SECONDS
        return float(min(seconds, MAX_REFUSE_SECONDS))

    def _add_filter(
        self, framework: Framework, role: str, agent_id: str, resources: Resources, seconds: float
    ) -> None:
        if seconds <= 0 or resources.is_empty():
            return
        framework.filters[(role, agent_id)] = (resources, trio.current_time() + seconds)

    def _call_accept(self, framework: Framework, call: Mapping[str, Any]) -> None:
        accept = call["accept"]
        refuse = self._refuse_seconds(accept.get("filters"))
        offer_ids = [o["value"] for o in accept.get("offer_ids", [])]
        operations = list(accept.get("operations", []))

        offers: list[Offer] = []
        error = None if offer_ids else "No offers specified"
        seen: set[str] = set()
        for offer_id in offer_ids:
            offer = framework.offers.get(offer_id)
            if offer_id in seen:
                error = error or f"Offer {offer_id} appears more than once in offer_ids"
            elif offer is None:
                error = error or f"Offer {offer_id} is no longer valid"
            else:
                offers.append(offer)
            seen.add(offer_id)
        if offers and len({o.agent_id for o in offers}) > 1:
            error = error or "Aggregated offers must belong to one single agent"
        if offers and len({o.role for o in offers}) > 1:
            error = error or "Aggregated offers must be allocated to the same role"
        for operation in operations:
            if operation.get("type") not in SUPPORTED_OPERATIONS:
                self._refuse_operation(framework, operation, offers[0].agent_id if offers else None)
        if error is not None:
            for offer in offers:
                self._discard_offer(framework, offer)
            state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            for operation in operations:
                for task_info in _launched_tasks(operation):
                    framework.send(
                        _update(
                            _status(
                                task_info["task_id"]["value"],
                                state,
                                reason="REASON_INVALID_OFFERS",
                                message=f"Task launched with invalid offers: {error}",
                                agent_id=task_info["agent_id"]["value"],
                            )
                        )
                    )
            return

        agent = self.agents[offers[0].agent_id]
        role = offers[0].role
        available = Resources()
        for offer in offers:
            framework.offers.pop(offer.id, None)
            available = available + offer.resources
        # Offered resources become the tasks'; whatever is left goes back below.
        agent.allocated = agent.allocated - available
        # Operations apply in order, each to what the ones before it left over.
        for operation in operations:
            if operation.get("type") == "LAUNCH":
                available = self._launch(framework, agent, operation, available)
            elif operation.get("type") == "LAUNCH_GROUP":
                available = self._launch_group(framework, agent, role, operation, available)
        self._add_filter(framework, role, agent.id, available, refuse)
        self._trigger(agent.id)

    def _launch(
        self, framework: Framework, agent: Agent, operation: Mapping[str, Any], available: Resources
    ) -> Resources:
        """Start each valid task of a LAUNCH (TASK_ERROR for the others); return what is left."""
        tasks = operation.get("launch", {}).get("task_infos", [])
        if "id" in operation:
            self._task_errors(
                framework,
                tasks,
                "REASON_TASK_INVALID",
                "The `id` field cannot be set on LAUNCH operations",
            )
            return available
        for task_info in tasks:
            problem, resources = self._launch_problem(framework, agent, task_info, available)
            if problem is not None:
                self._task_errors(framework, [task_info], "REASON_TASK_INVALID", problem)
                continue
            available = (available - resources).pruned()
            self._add_task(framework, agent, task_info, resources)
            self._to_agent(
                agent,
                "run_task",
                {"framework_id": framework.id, "framework_info": framework.info, "task": task_info},
            )
        return available

    def _launch_group(
        self,
        framework: Framework,
        agent: Agent,
        role: str,
        operation: Mapping[str, Any],
        available: Resources,
    ) -> Resources:
        """Start a task group atomically (all its tasks, or none: each gets TASK_ERROR).

        As in Mesos, the offer's allocation info is injected into every resource, and
        each task without an executor gets the group's, so that the executor shows in
        the task's state. The executor's resources are taken only when this launch
        starts it; a group for a live executor of the same id joins it.
        """
        group = operation.get("launch_group")
        if group is None or not group["task_group"].get("tasks"):
            # Mesos would start the executor and hold its resources while its agent
            # ignores the empty group; here nothing happens at all.
            log.warning("framework %s: LAUNCH_GROUP without tasks ignored", framework.id)
            return available
        executor = {**group["executor"]}
        executor["resources"] = _allocated(executor.get("resources", []), role)
        tasks = []
        for task_info in group["task_group"].get("tasks", []):
            task = {**task_info, "resources": _allocated(task_info.get("resources", []), role)}
            own = task.get("executor")
            task["executor"] = (
                executor
                if own is None
                else {**own, "resources": _allocated(own.get("resources", []), role)}
            )
            tasks.append(task)
        if "id" in operation:
            self._task_errors(
                framework,
                tasks,
                "REASON_TASK_GROUP_INVALID",
                "The `id` field cannot be set on LAUNCH_GROUP operations",
            )
            return available
        problem, needed = self._group_problem(framework, agent, executor, tasks, available)
        if problem is not None:
            self._task_errors(framework, tasks, "REASON_TASK_GROUP_INVALID", problem)
            return available
        launch_executor = (framework.id, executor["executor_id"]["value"]) not in agent.executors
        if launch_executor:
            self._add_executor(
                framework, agent, executor, Resources.from_json(executor["resources"])
            )
        for task in tasks:
            self._add_task(framework, agent, task, Resources.from_json(task["resources"]))
        self._to_agent(
            agent,
            "run_task_group",
            {
                "framework_id": framework.id,
                "framework_info": framework.info,
                "executor": executor,
                "tasks": tasks,
                "launch_executor": launch_executor,
            },
        )
        return (available - needed).pruned()

    def _add_task(
        self, framework: Framework, agent: Agent, task_info: Mapping[str, Any], resources: Resources
    ) -> None:
        task = Task(dict(task_info), framework.id, agent.id, resources)
        task.statuses.append({"state": "TASK_STAGING", "timestamp": _now()})
        framework.tasks[task.id] = task
        agent.tasks[(framework.id, task.id)] = task
        agent.allocated = agent.allocated + resources

    def _add_executor(
        self, framework: Framework, agent: Agent, info: dict[str, Any], resources: Resources
    ) -> None:
        executor = Executor(info, framework.id, agent.id, resources)
        agent.executors[(framework.id, executor.id)] = executor
        framework.executors[(agent.id, executor.id)] = executor
        agent.allocated = agent.allocated + resources

    def _remove_executor(self, executor: Executor) -> None:
        """Forget an executor and recover its resources."""
        framework = self.frameworks.get(executor.framework_id)
        if framework is not None:
            framework.executors.pop((executor.agent_id, executor.id), None)
        agent = self.agents.get(executor.agent_id)
        key = (executor.framework_id, executor.id)
        if agent is not None and agent.executors.get(key) is executor:
            del agent.executors[key]
            agent.allocated = (agent.allocated - executor.resources).pruned()
            self._trigger(agent.id)

    def _task_errors(
        self, framework: Framework, tasks: Iterable[Mapping[str, Any]], reason: str, message: str
    ) -> None:
        for task_info in tasks:
            framework.send(
                _update(
                    _status(
                        task_info["task_id"]["value"],
                        "TASK_ERROR",
                        reason=reason,
                        message=message,
                        agent_id=task_info["agent_id"]["value"],
                    )
                )
            )

    def _refuse_operation(
        self, framework: Framework, operation: Mapping[str, Any], agent_id: str | None
    ) -> None:
        """An offer operation this master does not apply (RESERVE, CREATE, ...).

        As with any operation Mesos cannot apply: the operation's resources stay in
        the offer (and are declined with the rest); an operation with an ``id`` gets
        an ``OPERATION_ERROR`` update (master-generated, no uuid, nothing to
        acknowledge); one without an id only gets a log line.
        """
        kind = operation.get("type", "UNKNOWN")
        message = f"Operation {kind} is not supported by mesos-local"
        log.warning("framework %s: %s", framework.id, message)
        operation_id = _value(operation.get("id"))
        if operation_id is None:
            return
        status: dict[str, Any] = {
            "operation_id": _id(operation_id),
            "state": "OPERATION_ERROR",
            "message": message,
        }
        if agent_id is not None:
            status["agent_id"] = _id(agent_id)
        framework.send(
            {"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": status}}
        )

    def _task_problem(
        self,
        framework: Framework,
        agent: Agent,
        task_info: Mapping[str, Any],
        earlier: Iterable[str] = (),
    ) -> tuple[str | None, Resources]:
        """What Mesos's ``validateTask`` finds wrong with a task, and its resources.

        ``earlier`` holds the ids of the tasks before it in the same task group.
        """
        task_id = task_info["task_id"]["value"]
        agent_id = task_info["agent_id"]["value"]
        grace = task_info.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds", 0)
        if (problem := _id_problem(task_id)) is not None:
            return problem, Resources()
        if task_id in framework.tasks or task_id in earlier:
            return f"Task has duplicate ID: {task_id}", Resources()
        if task_id in framework.unreachable_tasks:
            return f"Task reuses the ID of an unreachable task: {task_id}", Resources()
        if agent_id != agent.id:
            return (
                f"Task uses invalid agent {agent_id} while agent {agent.id} is expected",
                Resources(),
            )
        if grace < 0:
            return "Task's 'kill_policy.grace_period' must be non-negative", Resources()
        if not task_info.get("resources"):
            return "Task uses no resources", Resources()
        try:
            resources = Resources.from_json(task_info["resources"])
        except (ResourceError, KeyError, TypeError, ValueError) as exc:
            return f"Task uses invalid resources: {exc}", Resources()
        if resources.is_empty():
            return "Task uses no resources", Resources()
        return None, resources

    def _launch_problem(
        self, framework: Framework, agent: Agent, task_info: Mapping[str, Any], available: Resources
    ) -> tuple[str | None, Resources]:
        """What is wrong with a task of a LAUNCH (``validation::task::validate``)."""
        problem, resources = self._task_problem(framework, agent, task_info)
        if problem is not None:
            return problem, resources
        if ("command" in task_info) == ("executor" in task_info):
            return (
                "Task should have at least one (but not both) of CommandInfo or "
                "ExecutorInfo present",
                Resources(),
            )
        if "executor" in task_info:
            return "Custom executors are not supported by mesos-local", Resources()
        if not available.contains(resources):
            return (
                f"Total resources {resources} required by task and its executor is more "
                f"than available {available}",
                Resources(),
            )
        return None, resources

    def _group_problem(
        self,
        framework: Framework,
        agent: Agent,
        executor: Mapping[str, Any],
        tasks: list[dict[str, Any]],
        available: Resources,
    ) -> tuple[str | None, Resources]:
        """What Mesos's ``validation::task::group::validate`` finds wrong with a task
        group, checked in its order; else the resources the launch takes."""
        earlier: list[str] = []
        task_resources: list[Resources] = []
        for task in tasks:
            task_id = task["task_id"]["value"]
            problem, resources = self._task_problem(framework, agent, task, earlier)
            if problem is None and (task.get("container") or {}).get("type") == "DOCKER":
                problem = "Docker ContainerInfo is not supported on the task"
            if problem is not None:
                return f"Task '{task_id}' is invalid: {problem}", Resources()
            earlier.append(task_id)
            task_resources.append(resources)
        problem, executor_resources = self._executor_problem(framework, agent, executor)
        if problem is not None:
            return problem, Resources()
        executor_id = executor["executor_id"]["value"]
        for task in tasks:
            if task["executor"] != executor:
                return (
                    f"The `ExecutorInfo` of task '{task['task_id']['value']}' is different "
                    f"from executor '{executor_id}'",
                    Resources(),
                )
        cpus = executor_resources.scalars.get("cpus")
        if cpus is None or cpus < MIN_CPUS:
            return (
                f"Executor '{executor_id}' uses less CPUs ({_number(cpus)}) than the minimum "
                f"required ({_number(MIN_CPUS)})",
                Resources(),
            )
        mem = executor_resources.scalars.get("mem")
        if mem is None or mem < MIN_MEM:
            return (
                f"Executor '{executor_id}' uses less memory "
                f"({'None' if mem is None else _megabytes(mem)}) than the minimum required "
                f"({_megabytes(MIN_MEM)})",
                Resources(),
            )
        if "disk" not in executor_resources.scalars:
            return f"Executor '{executor_id}' uses no disk", Resources()
        if _overlapping([*task_resources, executor_resources]):
            listed = "[ " + ", ".join(str(r) for r in task_resources) + " ]"
            return (
                "There are overlapping resources in the task group's task resources "
                f"{listed} and/or executor resources {executor_resources}",
                Resources(),
            )
        total = Resources()
        for resources in task_resources:
            total = total + resources
        if (framework.id, executor_id) not in agent.executors:
            total = total + executor_resources
        if not available.contains(total):
            return (
                f"Total resources {total} required by task group and its executor are more "
                f"than available {available}",
                Resources(),
            )
        if executor.get("type") == "CUSTOM":
            return "Custom executors are not supported by mesos-local", Resources()
        return None, total

    def _executor_problem(
        self, framework: Framework, agent: Agent, executor: Mapping[str, Any]
    ) -> tuple[str | None, Resources]:
        """What Mesos's ``executor::internal::validate`` and the task-group checks of
        the executor find wrong with it, and its resources."""
        kind = executor.get("type")
        container = executor.get("container") or {}
        executor_id = executor["executor_id"]["value"]
        framework_id = _value(executor.get("framework_id"))
        grace = executor.get("shutdown_grace_period", {}).get("nanoseconds", 0)
        problem = None
        if kind == "DEFAULT" and "command" in executor:
            problem = "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
        elif kind == "DEFAULT" and container and container.get("type") != "MESOS":
            problem = "'ExecutorInfo.container.type' must be 'MESOS' for 'DEFAULT' executor"
        elif kind == "DEFAULT" and "image" in (container.get("mesos") or {}):
            problem = "'ExecutorInfo.container.mesos.image' must not be set for 'DEFAULT' executor"
        elif kind == "CUSTOM" and "command" not in executor:
            problem = "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
        elif (id_problem := _id_problem(executor_id)) is not None:
            problem = id_problem
        elif grace < 0:
            problem = "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
        elif framework_id is None:
            problem = "'ExecutorInfo.framework_id' must be set"
        elif framework_id != framework.id:
            problem = (
                f"ExecutorInfo has an invalid FrameworkID (Actual: {framework_id} vs "
                f"Expected: {framework.id})"
            )
        if problem is not None:
            return problem, Resources()
        try:
            resources = Resources.from_json(executor.get("resources", []))
        except (ResourceError, KeyError, TypeError, ValueError) as exc:
            return f"Executor uses invalid resources: {exc}", Resources()
        existing = agent.executors.get((framework.id, executor_id))
        if existing is not None and existing.info != executor:
            rule = "-" * 60
            problem = (
                "ExecutorInfo is not compatible with existing ExecutorInfo with same "
                f"ExecutorID.\n{rule}\nExisting ExecutorInfo:\n{json.dumps(existing.info)}\n"
                f"{rule}\nExecutorInfo:\n{json.dumps(executor)}\n{rule}\n"
            )
        elif kind is None:
            problem = "'ExecutorInfo.type' must be set"
        elif kind == "UNKNOWN":
            problem = "Unknown executor type"
        elif container.get("type") == "DOCKER":
            problem = "Docker ContainerInfo is not supported on the executor"
        return problem, resources

    def _call_kill(self, framework: Framework, call: Mapping[str, Any]) -> None:
        kill = call["kill"]
        task_id = kill["task_id"]["value"]
        task = framework.tasks.get(task_id)
        if task is None:
            self._reconcile_explicit(framework, [kill])
            return
        agent_id = _value(kill.get("agent_id"))
        if agent_id is not None and agent_id != task.agent_id:
            return
        agent = self.agents.get(task.agent_id)
        if agent is None:
            return
        policy = kill.get("kill_policy") or task.info.get("kill_policy") or {}
        grace = (policy.get("grace_period") or {}).get("nanoseconds")
        self._to_agent(
            agent,
            "kill_task",
            {
                "framework_id": framework.id,
                "task_id": task_id,
                "grace_period": None if grace is None else grace / 1e9,
            },
        )

    def _call_acknowledge(self, framework: Framework, call: Mapping[str, Any]) -> None:
        ack = call["acknowledge"]
        task_id = ack["task_id"]["value"]
        agent = self.agents.get(ack["agent_id"]["value"])
        if agent is not None:
            self._to_agent(
                agent,
                "acknowledge",
                {"framework_id": framework.id, "task_id": task_id, "uuid": ack["uuid"]},
            )
        task = framework.tasks.get(task_id)
        if (
            task is not None
            and task.status_update_uuid == ack["uuid"]
            and task.status_update_state in TERMINAL_STATES
        ):
            self._remove_task(framework, task)

    def _call_reconcile(self, framework: Framework, call: Mapping[str, Any]) -> None:
        tasks = call["reconcile"].get("tasks", [])
        if tasks:
            self._reconcile_explicit(framework, tasks)
            return
        for task in framework.tasks.values():
            framework.send(_update(self._reconcile_status(task)))

    def _reconcile_status(self, task: Task) -> dict[str, Any]:
        state = task.status_update_state or task.state
        status = _status(
            task.id,
            state,
            reason="REASON_RECONCILIATION",
            message="Reconciliation: Latest task state",
            agent_id=task.agent_id,
            executor_id=task.executor_id,
        )
        latest = task.latest_status or {}
        for key in ("healthy", "container_status"):
            if key in latest:
                status[key] = latest[key]
        return status

    def _reconcile_explicit(self, framework: Framework, tasks: Iterable[Mapping[str, Any]]) -> None:
        for item in tasks:
            task_id = item["task_id"]["value"]
            agent_id = _value(item.get("agent_id"))
            task = framework.tasks.get(task_id)
            if task is not None:
                framework.send(_update(self._reconcile_status(task)))
                continue
            if agent_id in self.recovered_agents or (agent_id is None and self.recovered_agents):
                # The task may be on an agent that has not re-registered since the master
                # failed over: no answer until it has or is marked unreachable.
                log.info(
                    "Dropping reconciliation of task %s for framework %s because %s not yet "
                    "re-registered with the master",
                    task_id,
                    framework.id,
                    f"agent {agent_id} has" if agent_id else "some agents have",
                )
                continue
            pa = framework.partition_aware
            unreachable = framework.unreachable_tasks.get(task_id)
            unreachable_time = None
            if unreachable is not None:
                agent_id = unreachable.agent_id
                unreachable_time = unreachable.unreachable_time
            elif agent_id is not None and agent_id in self.unreachable_agents:
                unreachable_time = self.unreachable_agents[agent_id].unreachable_time
            if unreachable_time is not None:
                status = _status(
                    task_id,
                    "TASK_UNREACHABLE" if pa else "TASK_LOST",
                    reason="REASON_RECONCILIATION",
                    message="Reconciliation: Task is unreachable",
                    agent_id=agent_id,
                )
                status["unreachable_time"] = {"nanoseconds": int(unreachable_time * 1e9)}
                framework.send(_update(status))
                continue
            if agent_id is not None and agent_id in self.agents:
                state = "TASK_GONE" if pa else "TASK_LOST"
                message = "Reconciliation: Task is unknown to the agent"
            else:
                state = "TASK_UNKNOWN" if pa else "TASK_LOST"
                message = "Reconciliation: Task is unknown"
            framework.send(
                _update(
                    _status(
                        task_id,
                        state,
                        reason="REASON_RECONCILIATION",
                        message=message,
                        agent_id=agent_id,
                    )
                )
            )

    def _call_shutdown(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """Ask the agent to shut an executor down; it knows whether it runs one."""
        shutdown = call["shutdown"]
        executor_id = shutdown["executor_id"]["value"]
        agent = self.agents.get(shutdown["agent_id"]["value"])
        if agent is None:
            log.warning(
                "Unable to shutdown executor '%s' of framework %s of unknown agent %s",
                executor_id,
                framework.id,
                shutdown["agent_id"]["value"],
            )
            return
        self._to_agent(
            agent, "shutdown_executor", {"framework_id": framework.id, "executor_id": executor_id}
        )

    def _call_message(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """Pass opaque bytes on to an executor through its agent (best effort, as in
        Mesos: a message for an agent that is not registered is dropped with a log
        line, and the agent drops one for an executor it does not run)."""
        message = call["message"]
        agent_id = message["agent_id"]["value"]
        agent = self.agents.get(agent_id)
        if agent is None:
            log.warning(
                "Cannot send framework message for framework %s to agent %s because agent "
                "is not registered",
                framework.id,
                agent_id,
            )
            return
        log.info("Processing MESSAGE call from framework %s to agent %s", framework.id, agent_id)
        self._to_agent(
            agent,
            "framework_message",
            {
                "framework_id": framework.id,
                "executor_id": message["executor_id"]["value"],
                "data": message["data"],
            },
        )

    # -- tasks and resources ---------------------------------------------------------

    def _free(self, task: Task) -> None:
        if task.freed:
            return
        task.freed = True
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.allocated = (agent.allocated - task.resources).pruned()
        self._trigger(task.agent_id)

    def _remove_task(self, framework: Framework, task: Task) -> None:
        self._free(task)
        framework.tasks.pop(task.id, None)
        framework.completed_tasks.append(task)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.pop((framework.id, task.id), None)

    def _discard_offer(self, framework: Framework, offer: Offer) -> None:
        """Return an offer's resources to its agent without telling the framework."""
        if framework.offers.pop(offer.id, None) is None:
            return
        if offer.timer is not None:
            offer.timer.cancel()
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.allocated = (agent.allocated - offer.resources).pruned()
        self._trigger(offer.agent_id)

    def _rescind(self, framework: Framework, offer: Offer) -> None:
        self._discard_offer(framework, offer)
        framework.send({"type": "RESCIND", "rescind": {"offer_id": _id(offer.id)}})

    # -- allocation ------------------------------------------------------------------

    def _trigger(self, agent_id: str | None = None) -> None:
        """Ask for an allocation: of one agent's resources, or of everything."""
        if agent_id is None:
            self._allocate_all = True
        else:
            self._dirty_agents.add(agent_id)
        self._wakeup.set()

    async def _allocation_loop(self) -> None:
        """Allocate every agent each ``allocation_interval`` and, in between, the agents
        whose resources changed (batched: changes arriving together share one run)."""
        while True:
            with trio.move_on_after(self.options.allocation_interval) as interval:
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            everything = interval.cancelled_caught or self._allocate_all
            dirty, self._dirty_agents, self._allocate_all = self._dirty_agents, set(), False
            self.allocate(None if everything else dirty)
            await trio.sleep(ALLOCATION_BATCH)

    _SHARE_NAMES = ("cpus", "mem", "disk")

    def _held(self, framework: Framework) -> list[float]:
        """cpus, mem and disk a framework holds in tasks, executors and offers."""
        held = [0.0, 0.0, 0.0]
        names = self._SHARE_NAMES
        for holding in itertools.chain(
            (t.resources for t in framework.tasks.values() if not t.freed),
            (e.resources for e in framework.executors.values()),
            (o.resources for o in framework.offers.values()),
        ):
            scalars = holding.scalars
            for i, name in enumerate(names):
                held[i] += scalars.get(name, 0.0)
        return held

    @staticmethod
    def _share(held: list[float], totals: list[float]) -> float:
        """Dominant share of the cluster (DRF)."""
        return max((h / t for h, t in zip(held, totals, strict=True) if t > 0), default=0.0)

    def allocate(self, agent_ids: Iterable[str] | None = None) -> None:
        """Offer each agent's free resources to the eligible framework with the least share.

        ``agent_ids`` limits the run to those agents (default: every agent).
        """
        now = trio.current_time()
        totals = [0.0, 0.0, 0.0]
        for agent in self.agents.values():
            for i, name in enumerate(self._SHARE_NAMES):
                totals[i] += agent.total.scalars.get(name, 0.0)
        eligible = [
            f
            for f in self.frameworks.values()
            if f.stream is not None and any(r not in f.suppressed for r in f.roles)
        ]
        if not eligible:
            return
        # With one framework its share decides nothing: skip summing its tasks.
        held = {f.id: self._held(f) if len(eligible) > 1 else [0.0] * 3 for f in eligible}
        batches: dict[str, list[dict[str, Any]]] = {}
        if agent_ids is None:
            agents = list(self.agents.values())
        else:
            agents = [self.agents[i] for i in agent_ids if i in self.agents]
        random.shuffle(agents)
        for agent in agents:
            free = agent.free
            if free.scalar("cpus") < MIN_CPUS and free.scalar("mem") < MIN_MEM:
                continue
            candidates: list[tuple[float, str, Framework, str]] = []
            for framework in eligible:
                share = self._share(held[framework.id], totals)
                for role in framework.roles:
                    if role in framework.suppressed:
                        continue
                    refused = framework.filters.get((role, agent.id))
                    if refused is not None:
                        if refused[1] <= now:
                            del framework.filters[(role, agent.id)]
                        elif refused[0].contains(free):
                            continue
                    candidates.append((share, framework.id, framework, role))
            if not candidates:
                continue
            _, _, framework, role = min(candidates, key=lambda c: (c[0], c[1]))
            offer = Offer(self._next_id("offer"), framework.id, agent.id, role, free)
            framework.offers[offer.id] = offer
            mine = held[framework.id]
            for i, name in enumerate(self._SHARE_NAMES):
                mine[i] += free.scalars.get(name, 0.0)
            if self.options.offer_timeout is not None and self._nursery is not None:
                offer.timer = trio.CancelScope()
                self._nursery.start_soon(self._offer_timer, framework, offer)
            agent.allocated = agent.allocated + free
            batches.setdefault(framework.id, []).append(self._offer_json(framework, agent, offer))
        for framework_id, offers in batches.items():
            self.frameworks[framework_id].send({"type": "OFFERS", "offers": {"offers": offers}})

    async def _offer_timer(self, framework: Framework, offer: Offer) -> None:
        """Rescind an offer not used within ``--offer_timeout`` (no filter is set)."""
        assert offer.timer is not None and self.options.offer_timeout is not None
        with offer.timer:
            await trio.sleep(self.options.offer_timeout)
            if framework.offers.get(offer.id) is offer:
                log.info("offer %s of framework %s timed out", offer.id, framework.id)
                offer.timer = None
                self._rescind(framework, offer)

    def _offer_json(self, framework: Framework, agent: Agent, offer: Offer) -> dict[str, Any]:
        refinement = "RESERVATION_REFINEMENT" in framework.capabilities
        return {
            "id": _id(offer.id),
            "framework_id": _id(framework.id),
            "agent_id": _id(agent.id),
            "hostname": agent.hostname,
            "url": {
                "scheme": "http",
                "address": {"hostname": agent.hostname, "ip": agent.hostname, "port": agent.port},
                "path": "/slave(1)",
            },
            "allocation_info": {"role": offer.role},
            "resources": offer.resources.to_json(
                allocation_role=offer.role, with_role=not refinement
            ),
            "attributes": agent.attributes,
            "executor_ids": [
                _id(executor_id)
                for framework_id, executor_id in agent.executors
                if framework_id == framework.id
            ],
        }

    # -- agents ------------------------------------------------------------------------

    async def _register_agent(self, request: Request) -> Response:
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
        agent_id = str(agent_id) if reregistering else self._next_id("agent")
        info: AgentInfo = {
            "id": _id(agent_id),
            "hostname": hostname,
            "port": port,
            "resources": resources.to_json(),
            "attributes": attributes,
        }
        if agent_id in self._transitioning:
            return Response.text(409, f"Agent {agent_id} is changing in the registry; retry")
        recovered = agent_id in self.recovered_agents
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
            self._reconcile_agent(agent, frameworks, reported, executors, recovered=recovered)
        return Response.json(
            {
                "agent_id": agent.id,
                "master_id": self.id,
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
        assert self._nursery is not None
        old = None
        known = False
        if agent_id is not None:
            old = self.agents.pop(agent_id, None)
            known = old is not None
            known |= self.unreachable_agents.pop(agent_id, None) is not None
            known |= self.recovered_agents.pop(agent_id, None) is not None
        if old is not None:
            old.scope.cancel()
            old.outbox.close()
            for framework in self.frameworks.values():
                for offer in [o for o in framework.offers.values() if o.agent_id == old.id]:
                    self._rescind(framework, offer)
        send, receive = trio.open_memory_channel[tuple[str, dict[str, Any]]](math.inf)
        agent = Agent(
            id=agent_id if agent_id is not None else self._next_id("agent"),
            hostname=hostname,
            port=port,
            pid=pid,
            total=resources,
            attributes=attributes,
            registered_time=old.registered_time if old is not None else _now(),
            outbox=send,
            simulated=simulated,
        )
        if known:
            agent.reregistered_time = _now()
            log.info("agent %s re-registered at %s", agent.id, agent.url)
        else:
            log.info("agent %s registered at %s with %s", agent.id, agent.url, resources)
        self.agents[agent.id] = agent
        if simulated is None:
            self._nursery.start_soon(self._agent_link, agent, receive)
        else:
            receive.close()
        self._changed()
        self._trigger(agent.id)
        return agent

    def _reconcile_agent(
        self,
        agent: Agent,
        frameworks: list[dict[str, Any]],
        reported: list[tuple[str, dict[str, Any], str]],
        executors: list[tuple[str, dict[str, Any]]],
        *,
        recovered: bool,
    ) -> None:
        """Match the frameworks, tasks and executors a re-registering agent runs with
        what the master knows.

        Frameworks this master has not seen (it failed over) are recovered from the
        agent's ``FrameworkInfo``: known but disconnected until they re-subscribe. Tasks
        that come back from an unreachable or unknown agent are reported again in their
        current state with ``REASON_AGENT_REREGISTERED`` (a LOST task can thus be seen
        RUNNING again, as in Mesos ≥ 1.5); those of an agent ``recovered`` from the
        registry are taken back silently, as Mesos does (frameworks reconcile). Tasks of
        frameworks removed meanwhile are shut down; tasks the master expected but the
        agent no longer has are gone. Executors are what the agent reports: the others
        are forgotten, as in Mesos's ``reconcileKnownSlave``.
        """
        for info in frameworks:
            framework_id = _value(info.get("id"))
            if (
                framework_id is not None
                and framework_id not in self.frameworks
                and framework_id not in self.removed_framework_ids
            ):
                log.info("recovering framework %s from re-registered agent %s",
                         framework_id, agent.id)  # fmt: skip
                self.frameworks[framework_id] = Framework(
                    framework_id, info, _now(), recovered=True
                )
        seen: set[tuple[str, str]] = set()
        shutdown: set[str] = set()
        for framework_id, info, state in reported:
            task_id = str(info["task_id"]["value"])
            framework = self.frameworks.get(framework_id)
            if framework is None:
                if framework_id in self.removed_framework_ids:
                    shutdown.add(framework_id)
                else:
                    log.warning("agent %s runs task %s of unknown framework %s; left alone",
                                agent.id, task_id, framework_id)  # fmt: skip
                continue
            seen.add((framework_id, task_id))
            task = framework.tasks.get(task_id)
            notify = task is None and not recovered  # back from unreachable, or news
            if task is None:
                task = framework.unreachable_tasks.pop(task_id, None)
            if task is None:
                try:
                    resources = Resources.from_json(info.get("resources", []))
                except (ResourceError, KeyError, TypeError, ValueError):
                    resources = Resources()
                task = Task(info, framework_id, agent.id, resources)
            task.agent_id = agent.id
            task.unreachable_time = None
            task.state = state
            framework.tasks[task_id] = task
            agent.tasks[(framework_id, task_id)] = task
            if state in TERMINAL_STATES:
                task.freed = True
            else:
                task.freed = False
                agent.allocated = agent.allocated + task.resources
            if notify:
                framework.send(
                    _update(
                        _status(
                            task_id,
                            state,
                            reason="REASON_AGENT_REREGISTERED",
                            message="Agent re-registered",
                            agent_id=agent.id,
                            executor_id=task.executor_id,
                        )
                    )
                )
                task.status_update_state = state
        for framework_id, info in executors:
            framework = self.frameworks.get(framework_id)
            if framework is None:
                if framework_id in self.removed_framework_ids:
                    shutdown.add(framework_id)
                continue
            try:
                resources = Resources.from_json(info.get("resources", []))
            except (ResourceError, KeyError, TypeError, ValueError):
                resources = Resources()
            self._add_executor(framework, agent, info, resources)
        for framework in self.frameworks.values():
            for (agent_id, executor_id), executor in list(framework.executors.items()):
                if (
                    agent_id == agent.id
                    and agent.executors.get((framework.id, executor_id)) is not executor
                ):
                    del framework.executors[(agent_id, executor_id)]
        # Tasks the master placed on this agent that the agent does not run (any more).
        expected: list[tuple[Framework, Task]] = []
        for framework in self.frameworks.values():
            for task in list(framework.tasks.values()) + list(framework.unreachable_tasks.values()):
                if task.agent_id == agent.id and (framework.id, task.id) not in seen:
                    expected.append((framework, task))
        for framework, task in expected:
            framework.unreachable_tasks.pop(task.id, None)
            framework.tasks[task.id] = task
            if task.state in TERMINAL_STATES:
                self._remove_task(framework, task)
                continue
            state = "TASK_GONE" if framework.partition_aware else "TASK_LOST"
            task.state = state
            framework.send(
                _update(
                    _status(
                        task.id,
                        state,
                        reason="REASON_AGENT_REREGISTERED",
                        message="Task is unknown to the re-registered agent",
                        agent_id=agent.id,
                    )
                )
            )
            self._remove_task(framework, task)
        for framework_id in shutdown:
            self._to_agent(agent, "shutdown_framework", {"framework_id": framework_id})
        self._trigger(agent.id)

    def _to_agent(self, agent: Agent, action: str, body: dict[str, Any]) -> None:
        if agent.simulated is not None:
            agent.simulated.handle(action, body)
            return
        try:
            agent.outbox.send_nowait((action, body))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            log.info("agent %s is gone; %s dropped", agent.id, action)

    async def _agent_link(
        self, agent: Agent, receive: trio.MemoryReceiveChannel[tuple[str, dict[str, Any]]]
    ) -> None:
        """The outbox and the pinger of one agent, until it is replaced or removed."""
        with agent.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._agent_sender, agent, receive)
                nursery.start_soon(self._pinger, agent)

    async def _agent_sender(
        self, agent: Agent, receive: trio.MemoryReceiveChannel[tuple[str, dict[str, Any]]]
    ) -> None:
        """Deliver messages to one agent in order (libprocess keeps order per link)."""
        assert self._client is not None
        async for action, body in receive:
            try:
                response = await self._client.post(f"{agent.url}/_local/{action}", json=body)
                if response.status_code >= 400:
                    log.warning(
                        "agent %s refused %s: %s %s",
                        agent.id,
                        action,
                        response.status_code,
                        response.text,
                    )
            except httpx.HTTPError as exc:
                log.warning("agent %s unreachable for %s: %s", agent.id, action, exc)

    def _agent_status(self, request: Request) -> Response:
        """A status update from an agent; forwarded to the framework if it is connected."""
        try:
            body = request.json()
            agent_id = str(body["agent_id"])
            framework_id = body["framework_id"]
            status = dict(body["status"])
        except (ValueError, KeyError, TypeError) as exc:
            return Response.text(400, f"Bad status update: {exc}")
        agent = self.agents.get(agent_id)
        if agent is None:
            # Mesos drops updates of agents it does not consider registered; the
            # agent learns it must re-register.
            return Response.text(409, f"Agent {agent_id} is not registered")
        return self.status_update(agent, framework_id, status)

    def _agent_executor_exited(self, request: Request) -> Response:
        try:
            body = request.json()
            agent_id = str(body["agent_id"])
            framework_id = str(body["framework_id"])
            executor_id = str(body["executor_id"])
            status = int(body["status"])
        except (ValueError, KeyError, TypeError) as exc:
            return Response.text(400, f"Bad exited executor message: {exc}")
        agent = self.agents.get(agent_id)
        if agent is None:
            log.warning(
                "Ignoring exited executor '%s' of framework %s on unknown agent %s",
                executor_id,
                framework_id,
                agent_id,
            )
        else:
            self.executor_exited(agent, framework_id, executor_id, status)
        return Response(202)

    def executor_exited(
        self, agent: Agent, framework_id: str, executor_id: str, status: int
    ) -> None:
        """An executor ended on its agent: its resources are recovered and its framework
        gets ``FAILURE`` with the executor id and wait status, as in Mesos."""
        executor = agent.executors.get((framework_id, executor_id))
        if executor is None:
            log.warning(
                "Ignoring unknown exited executor '%s' of framework %s on agent %s",
                executor_id,
                framework_id,
                agent.id,
            )
            return
        log.info(
            "Executor '%s' of framework %s on agent %s exited with status %d",
            executor_id,
            framework_id,
            agent.id,
            status,
        )
        self._remove_executor(executor)
        framework = self.frameworks.get(framework_id)
        if framework is None or not framework.connected:
            log.warning(
                "Not forwarding exited executor message for executor '%s' of framework %s "
                "because the framework is %s",
                executor_id,
                framework_id,
                "unknown" if framework is None else "disconnected",
            )
            return
        framework.send(
            {
                "type": "FAILURE",
                "failure": {
                    "agent_id": _id(agent.id),
                    "executor_id": _id(executor_id),
                    "status": status,
                },
            }
        )

    def status_update(self, agent: Agent, framework_id: str, status: dict[str, Any]) -> Response:
        """Apply an agent's status update and forward it (404: the framework is gone)."""
        task_id = status["task_id"]["value"]
        framework = self.frameworks.get(framework_id)
        if framework is None:
            return Response.text(404, f"Framework {framework_id} is unknown")
        task = framework.tasks.get(task_id)
        status["agent_id"] = _id(agent.id)
        if task is not None:
            if task.latest_status is None or task.latest_status.get("uuid") != status.get("uuid"):
                task.statuses.append(
                    {"state": status["state"], "timestamp": status.get("timestamp", _now())}
                )
            task.state = status["state"]
            task.latest_status = status
            if task.state in TERMINAL_STATES:
                self._free(task)
        if framework.stream is None:
            return Response(202)  # the agent retries until acknowledged
        framework.send(_update(status))
        if task is not None:
            task.status_update_state = status["state"]
            task.status_update_uuid = status.get("uuid")
        return Response(202)

    async def _pinger(self, agent: Agent) -> None:
        """Ping an agent every ``agent_ping_timeout``; too many misses make it unreachable.

        A ping is missed when it is not answered within ``agent_ping_timeout`` (a
        stopped agent) or fails at once (a dead one). After
        ``max_agent_ping_timeouts`` misses in a row the agent is marked unreachable.
        """
        assert self._client is not None
        interval = self.options.agent_ping_timeout
        misses = 0
        while True:
            started = trio.current_time()
            answered = False
            try:
                response = await self._client.get(
                    f"{agent.url}/_local/ping",
                    params={"agent_id": agent.id},
                    timeout=interval,
                )
                answered = response.status_code == 200
            except httpx.HTTPError:
                pass
            if answered:
                misses = 0
            else:
                misses += 1
                log.info(
                    "agent %s missed ping %d of %d",
                    agent.id,
                    misses,
                    self.options.max_agent_ping_timeouts,
                )
                if misses >= self.options.max_agent_ping_timeouts:
                    await self.mark_unreachable(agent, "health check timed out")
                    return
            await trio.sleep_until(started + interval)

    async def mark_unreachable(self, agent: Agent, why: str) -> None:
        """Take an agent out of the cluster as Mesos does when its pings time out.

        The registry moves it to the unreachable agents first. Then its offers are
        rescinded; each of its tasks is reported once by the master (no uuid) as
        TASK_UNREACHABLE to PARTITION_AWARE frameworks and TASK_LOST to the others, with
        ``REASON_AGENT_REMOVED`` and ``unreachable_time``; every connected framework
        gets ``FAILURE{agent_id}``.
        """
        if self.agents.get(agent.id) is not agent or agent.id in self._transitioning:
            return
        now = _now()
        self._transitioning.add(agent.id)
        try:
            await self.registry.mark_unreachable([agent.info], now)
        finally:
            self._transitioning.discard(agent.id)
        log.warning("agent %s (%s) is unreachable: %s", agent.id, agent.hostname, why)
        self.unreachable_agents[agent.id] = UnreachableAgent(agent.info, now)
        self._remove_agent(agent, f"Agent {agent.hostname} is unreachable: {why}", now)

    async def _unregister_agent(self, request: Request) -> Response:
        """An agent shutting down (its tasks killed) leaves the cluster for good, as a
        Mesos agent does on SIGUSR1: it is removed from the registry, and what the
        master still knows of its tasks is reported ``TASK_GONE_BY_OPERATOR`` (PA) /
        ``TASK_LOST``."""
        try:
            agent_id = str(request.json()["agent_id"])
        except (ValueError, KeyError, TypeError) as exc:
            return Response.text(400, f"Bad unregistration: {exc}")
        agent = self.agents.get(agent_id)
        if agent is None or agent_id in self._transitioning:
            log.warning("Ignoring unregister agent message for unknown agent %s", agent_id)
            return Response(202)
        self._transitioning.add(agent_id)
        try:
            await self.registry.remove(agent_id)
        finally:
            self._transitioning.discard(agent_id)
        log.info("removing agent %s (%s): the agent unregistered", agent.id, agent.hostname)
        self._remove_agent(agent, f"Agent {agent.hostname} removed: the agent unregistered")
        return Response(202)

    def _remove_agent(
        self, agent: Agent, message: str, unreachable_time: float | None = None
    ) -> None:
        """Mesos's ``__removeSlave``: forget a registered agent, rescind its offers and
        tell the frameworks about its tasks and about the agent (``FAILURE``).

        With an ``unreachable_time`` the tasks may come back (TASK_UNREACHABLE / LOST,
        kept as unreachable tasks); without one they are gone (TASK_GONE_BY_OPERATOR /
        LOST).
        """
        if self.agents.get(agent.id) is not agent:
            return
        del self.agents[agent.id]
        agent.scope.cancel()
        agent.outbox.close()
        for framework in self.frameworks.values():
            for offer in [o for o in framework.offers.values() if o.agent_id == agent.id]:
                self._rescind(framework, offer)
        for (framework_id, task_id), task in list(agent.tasks.items()):
            owner = self.frameworks.get(framework_id)
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
            status = _status(
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
            owner.send(_update(status))
        agent.tasks.clear()
        for executor in list(agent.executors.values()):
            self._remove_executor(executor)
        agent.executors.clear()
        agent.allocated = Resources()
        self._agent_lost(agent.id)

    def _agent_lost(self, agent_id: str) -> None:
        """Mesos's ``sendSlaveLost``: ``FAILURE{agent_id}`` to every connected framework."""
        for framework in self.frameworks.values():
            framework.send({"type": "FAILURE", "failure": {"agent_id": _id(agent_id)}})
        self._changed()
        self._trigger()

    async def _recovered_agents_timeout(self) -> None:
        """Mesos's ``recoveredSlavesTimeout``: agents of the registry that have not
        re-registered within ``--agent_reregister_timeout`` of this master's start are
        marked unreachable.

        This master never knew their tasks, so nothing is reported but ``FAILURE``; a
        framework that reconciles them gets TASK_UNREACHABLE / TASK_LOST from then on.
        Agents in the middle of re-registering are left to finish.
        """
        await trio.sleep(self.options.agent_reregister_timeout)
        missing = [
            info for agent_id, info in self.recovered_agents.items()
            if agent_id not in self._transitioning
        ]  # fmt: skip
        if not missing:
            return
        now = _now()
        ids = {str(info["id"]["value"]) for info in missing}
        self._transitioning |= ids
        try:
            await self.registry.mark_unreachable(missing, now)
        finally:
            self._transitioning -= ids
        for info in missing:
            agent_id = str(info["id"]["value"])
            del self.recovered_agents[agent_id]
            self.unreachable_agents[agent_id] = UnreachableAgent(info, now)
            log.warning(
                "agent %s (%s) is unreachable: did not re-register within %ss after master "
                "failover",
                agent_id,
                info.get("hostname"),
                self.options.agent_reregister_timeout,
            )
            self._agent_lost(agent_id)

    # -- state -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """``/master/state`` in the legacy ("slave") vocabulary of real Mesos."""
        host = self.options.host
        offered: dict[str, Resources] = {}
        used: dict[str, Resources] = {}
        for framework in self.frameworks.values():
            for offer in framework.offers.values():
                offered[offer.agent_id] = offered.get(offer.agent_id, Resources()) + offer.resources
            for task in framework.tasks.values():
                if not task.freed:
                    used[task.agent_id] = used.get(task.agent_id, Resources()) + task.resources
            for executor in framework.executors.values():
                agent_id = executor.agent_id
                used[agent_id] = used.get(agent_id, Resources()) + executor.resources
        slaves = [
            {
                "id": agent.id,
                "hostname": agent.hostname,
                "port": agent.port,
                "attributes": attributes_to_json(agent.attributes),
                "pid": f"slave(1)@{agent.hostname}:{agent.port}",
                "registered_time": agent.registered_time,
                "resources": agent.total.to_state(),
                "used_resources": used.get(agent.id, Resources()).to_state(),
                "offered_resources": offered.get(agent.id, Resources()).to_state(),
                "reserved_resources": {},
                "unreserved_resources": agent.total.to_state(),
                "active": True,
                "deactivated": False,
                "version": MESOS_VERSION,
                "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
            }
            for agent in self.agents.values()
        ]
        return {
            "version": MESOS_VERSION,
            "build_date": "",
            "build_time": 0.0,
            "build_user": "",
            "start_time": self.start_time,
            "elected_time": self.start_time,
            "id": self.id,
            "pid": f"master@{host}:{self.port}",
            "hostname": host,
            "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING"],
            "activated_slaves": len(self.agents),
            "deactivated_slaves": 0,
            "unreachable_slaves": len(self.unreachable_agents),
            "leader": f"master@{host}:{self.port}",
            "leader_info": self.master_info,
            "flags": {
                "port": str(self.port),
                "allocation_interval": f"{self.options.allocation_interval}secs",
                "agent_ping_timeout": f"{self.options.agent_ping_timeout}secs",
                "max_agent_ping_timeouts": str(self.options.max_agent_ping_timeouts),
                "agent_reregister_timeout": f"{self.options.agent_reregister_timeout}secs",
                **(
                    {"offer_timeout": f"{self.options.offer_timeout}secs"}
                    if self.options.offer_timeout is not None
                    else {}
                ),
            },
            "slaves": slaves,
            "recovered_slaves": list(self.recovered_agents.values()),
            "frameworks": [self._framework_state(f) for f in self.frameworks.values()],
            "completed_frameworks": [self._framework_state(f) for f in self.completed_frameworks],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        }

    def _framework_state(self, framework: Framework) -> dict[str, Any]:
        info = framework.info
        used = Resources()
        for task in framework.tasks.values():
            if not task.freed:
                used = used + task.resources
        for executor in framework.executors.values():
            used = used + executor.resources
        offered = Resources()
        for offer in framework.offers.values():
            offered = offered + offer.resources
        state: dict[str, Any] = {
            "id": framework.id,
            "name": info.get("name", ""),
            "used_resources": used.to_state(),
            "offered_resources": offered.to_state(),
            "capabilities": sorted(framework.capabilities),
            "hostname": info.get("hostname", ""),
            "webui_url": info.get("webui_url", ""),
            "active": framework.connected,
            "connected": framework.connected,
            "recovered": framework.recovered,
            "user": info.get("user", ""),
            "failover_timeout": info.get("failover_timeout", 0.0),
            "checkpoint": info.get("checkpoint", False),
            "registered_time": framework.registered_time,
            "unregistered_time": framework.unregistered_time or 0.0,
            "tasks": [self._task_state(t) for t in framework.tasks.values()],
            "unreachable_tasks": [
                self._task_state(t) for t in framework.unreachable_tasks.values()
            ],
            "completed_tasks": [self._task_state(t) for t in framework.completed_tasks],
            "offers": [
                {
                    "id": o.id,
                    "framework_id": o.framework_id,
                    "slave_id": o.agent_id,
                    "resources": o.resources.to_state(),
                    "allocation_info": {"role": o.role},
                }
                for o in framework.offers.values()
            ],
            "executors": [_executor_state(e) for e in framework.executors.values()],
            "labels": info.get("labels", {}).get("labels", []),
        }
        if "MULTI_ROLE" in framework.capabilities:
            state["roles"] = framework.roles
        else:
            state["role"] = framework.roles[0]
        if "principal" in info:
            state["principal"] = info["principal"]
        if framework.reregistered_time is not None:
            state["reregistered_time"] = framework.reregistered_time
        return state

    def _task_state(self, task: Task) -> dict[str, Any]:
        info = task.info
        state: dict[str, Any] = {
            "id": task.id,
            "name": info.get("name", ""),
            "framework_id": task.framework_id,
            "executor_id": task.executor_id or "",
            "slave_id": task.agent_id,
            "state": task.state,
            "resources": task.resources.to_state(),
            "role": self.frameworks[task.framework_id].roles[0]
            if task.framework_id in self.frameworks
            else "*",
            "statuses": task.statuses,
        }
        for key in ("labels", "discovery", "container", "health_check"):
            if key in info:
                state[key] = info[key]
        return state


def _executor_state(executor: Executor) -> dict[str, Any]:
    """An executor of a framework in ``/master/state`` (``json(ExecutorInfo)`` plus
    ``slave_id``); a default executor has no command on the master."""
    info = executor.info
    command = info.get("command", {})
    state: dict[str, Any] = {
        "executor_id": executor.id,
        "name": info.get("name", ""),
        "framework_id": executor.framework_id,
        "command": {
            **{k: command[k] for k in ("shell", "value") if k in command},
            "argv": list(command.get("arguments", [])),
            **({"environment": command["environment"]} if "environment" in command else {}),
            "uris": [
                {"value": u["value"], "executable": u.get("executable", False)}
                for u in command.get("uris", [])
            ],
        },
        "resources": executor.resources.to_state(),
    }
    resources = info.get("resources", [])
    if resources:
        state["role"] = resources[0].get("allocation_info", {}).get("role", "*")
    if "labels" in info:
        state["labels"] = info["labels"].get("labels", [])
    if "type" in info:
        state["type"] = info["type"]
    state["slave_id"] = executor.agent_id
    return state
