"""Test helpers: a tiny Mesos v1 scheduler on httpx, and agent faults.

:class:`SchedulerClient` subscribes, decodes the RecordIO event stream, acknowledges
updates that carry a ``uuid`` (optionally), and remembers every call it sent and every
event it got, so that a test can check them all against the real protos afterwards.

Agent faults on a running :class:`~marathon_mesos_local.cluster.Cluster` (agent
``index`` binds ``127.0.0.(2+index)`` by default):

* :func:`power_off` -- SIGKILL of the agent machine's whole process group (agent and
  tasks); returns once every one of its processes is gone. The master notices through
  missed pings: TASK_UNREACHABLE / TASK_LOST after ``agent_ping_timeout *
  max_agent_ping_timeouts``. :func:`power_on` boots it again (a new agent id).
* :func:`restart_agent` -- SIGKILL of the agent process only; it is restarted, recovers
  its tasks and re-registers; returns once it has.
* :func:`pause_agent` / :func:`resume_agent` -- SIGSTOP / SIGCONT of the agent process
  (a partition: tasks keep running, pings go unanswered; after SIGCONT it re-registers).
* :func:`task_pids` -- the live processes of a task (main process and children).

:class:`NullFramework` drives a :class:`SchedulerClient` to launch N tasks, alone or in
task groups under default executors (:func:`executor_info`, :meth:`SchedulerClient.
launch_group`).

Master failover: :class:`MasterProcess` runs ``marathon-mesos-local --agents 0`` in a
process of its own, which a test can SIGKILL and start again on the same port and
work dir while agents (a :class:`~marathon_mesos_local.cluster.Cluster` with
``master_url``) keep running; :func:`master_state` reads its ``/master/state``.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import trio

from marathon_mesos_local.containerizer import container_pids

if TYPE_CHECKING:
    from marathon_mesos_local.cluster import Cluster

__all__ = [
    "MasterProcess",
    "NullFramework",
    "RecordIODecoder",
    "SchedulerClient",
    "executor_info",
    "launch_group_operation",
    "master_state",
    "pause_agent",
    "power_off",
    "power_on",
    "restart_agent",
    "resume_agent",
    "task_info",
    "task_pids",
]


async def power_off(cluster: Cluster, index: int, *, timeout: float = 10.0) -> None:
    """Pull agent ``index``'s power cord; return when all its processes are gone."""
    await cluster.power_off(index, timeout=timeout)


async def power_on(cluster: Cluster, index: int) -> str:
    """Boot agent ``index``'s machine again; return its new agent id once registered."""
    return await cluster.power_on(index)


async def restart_agent(cluster: Cluster, index: int) -> str:
    """Kill agent ``index``'s process (not its tasks); return once it re-registered."""
    return await cluster.restart_agent(index)


def pause_agent(cluster: Cluster, index: int) -> None:
    """SIGSTOP agent ``index`` (its tasks keep running)."""
    cluster.pause_agent(index)


def resume_agent(cluster: Cluster, index: int) -> None:
    """SIGCONT agent ``index``; it re-registers once it sees the master gave it up."""
    cluster.resume_agent(index)


def task_pids(cluster: Cluster, task_id: str) -> list[int]:
    """Live processes of the task ``task_id`` on any agent of ``cluster`` (a command
    task's sandbox is its executor's run; a group task's is ``<run>/tasks/<task id>``)."""
    assert cluster.work_dir is not None
    executors = "agent-*/slaves/*/frameworks/*/executors"
    found: list[int] = []
    for record in [
        *cluster.work_dir.glob(f"{executors}/{task_id}/runs/.*.container"),
        *cluster.work_dir.glob(f"{executors}/*/runs/*/tasks/.{task_id}.container"),
    ]:
        try:
            container_id = record.read_text().split("\n")[1]
        except (OSError, IndexError):
            continue
        found.extend(container_pids(container_id))
    return sorted(set(found))


class MasterProcess:
    """A master alone in a process of its own, with ``work_dir`` and Mesos ``flags``.

    :meth:`start` returns its URL once it listens (the first start may use port 0;
    later starts reuse the port it got); :meth:`kill` SIGKILLs it, as a crash would;
    :meth:`stop` ends it with SIGTERM. Its stderr goes to ``<work_dir>/master.log``.
    """

    def __init__(self, work_dir: Path, *flags: str, port: int = 0) -> None:
        self.work_dir = work_dir
        self.flags = flags
        self.port = port
        self.log = work_dir / "master.log"
        self.process: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, *, timeout: float = 30.0) -> str:
        """Start the master; return its URL once it listens."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        argv = [
            sys.executable, "-m", "marathon_mesos_local.cli", "--agents", "0",
            "--port", str(self.port), "--work_dir", str(self.work_dir), *self.flags,
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = await trio.lowlevel.open_process(
                argv, stdin=subprocess.DEVNULL, stderr=log, start_new_session=True
            )
        with trio.fail_after(timeout):
            while True:
                text = self.log.read_bytes()[offset:].decode(errors="replace")
                if match := re.search(r"listening on http://[\d.]+:(\d+)", text):
                    self.port = int(match.group(1))
                    return self.url
                if self.process.returncode is not None:
                    raise RuntimeError(f"the master exited ({self.process.returncode}): {text}")
                await trio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL the master; return once it is gone."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM the master and wait (SIGKILL if it takes longer than ``timeout``)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(timeout):
            await self.process.wait()
        await self.kill()


async def master_state(url: str) -> dict[str, Any]:
    """The master's ``/master/state``."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"{url.rstrip('/')}/master/state")
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state


Event = dict[str, Any]


class RecordIODecoder:
    """Splits a byte stream into RecordIO records (``<length>\\n<bytes>``)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        records = []
        while True:
            head, sep, rest = self._buffer.partition(b"\n")
            if not sep:
                break
            length = int(head)
            if len(rest) < length:
                break
            records.append(rest[:length])
            self._buffer = rest[length:]
        return records


def task_info(
    offer: Mapping[str, Any],
    task_id: str,
    command: str,
    *,
    cpus: float = 0.1,
    mem: float = 32.0,
    ports: int = 0,
    env: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A command TaskInfo using part of ``offer`` (and its first ``ports`` ports)."""
    role = offer.get("allocation_info", {}).get("role", "*")
    resources: list[dict[str, Any]] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}, "role": "*",
         "allocation_info": {"role": role}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}, "role": "*",
         "allocation_info": {"role": role}},
    ]  # fmt: skip
    if ports:
        offered = next(r for r in offer["resources"] if r["name"] == "ports")
        begin = offered["ranges"]["range"][0]["begin"]
        resources.append(
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": begin, "end": begin + ports - 1}]},
                "role": "*",
                "allocation_info": {"role": role},
            }
        )
    info: dict[str, Any] = {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": resources,
        "command": {"shell": True, "value": command},
    }
    if env:
        info["command"]["environment"] = {
            "variables": [{"name": k, "value": v} for k, v in env.items()]
        }
    info.update(extra)
    return info


def executor_info(
    framework_id: str,
    executor_id: str,
    *,
    role: str = "*",
    cpus: float = 0.1,
    mem: float = 32.0,
    disk: float = 10.0,
    **extra: Any,
) -> dict[str, Any]:
    """A DEFAULT ``ExecutorInfo`` for task groups (Mesos wants cpus, mem and disk)."""
    resources = [
        {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": "*",
         "allocation_info": {"role": role}}
        for name, value in (("cpus", cpus), ("mem", mem), ("disk", disk))
    ]  # fmt: skip
    info: dict[str, Any] = {
        "type": "DEFAULT",
        "executor_id": {"value": executor_id},
        "framework_id": {"value": framework_id},
        "resources": resources,
    }
    info.update(extra)
    return info


def launch_group_operation(
    executor: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A LAUNCH_GROUP offer operation; tasks may leave out ``executor`` (the master adds
    the group's) and need no ``command`` of their own executor."""
    return {
        "type": "LAUNCH_GROUP",
        "launch_group": {"executor": dict(executor), "task_group": {"tasks": list(tasks)}},
    }


class SchedulerClient:
    """One framework talking to a master over the v1 scheduler API."""

    def __init__(
        self, master_url: str, *, auto_ack: bool = True, auth: tuple[str, str] | None = None
    ) -> None:
        """``auth``: the (principal, secret) every call carries (HTTP Basic)."""
        self.url = master_url.rstrip("/") + "/api/v1/scheduler"
        self.auto_ack = auto_ack
        self.framework_id: str | None = None
        self.stream_id: str | None = None
        self.calls: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.stream_closed = trio.Event()
        self._new_event = trio.Event()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), auth=auth)
        self._nursery: trio.Nursery | None = None
        self._stream_scope: trio.CancelScope | None = None

    async def aclose(self) -> None:
        await self._client.aclose()

    async def subscribe(
        self,
        nursery: trio.Nursery,
        *,
        name: str = "test-framework",
        roles: Sequence[str] = ("*",),
        capabilities: Sequence[str] = ("MULTI_ROLE",),
        framework_id: str | None = None,
        **info: Any,
    ) -> Event:
        """Subscribe and read the stream in ``nursery``; return the SUBSCRIBED event."""
        framework_info: dict[str, Any] = {
            "user": "root",
            "name": name,
            "capabilities": [{"type": c} for c in capabilities],
            **info,
        }
        if "MULTI_ROLE" in capabilities:
            framework_info["roles"] = list(roles)
        call: dict[str, Any] = {
            "type": "SUBSCRIBE",
            "subscribe": {"framework_info": framework_info},
        }
        if framework_id is not None:
            call["framework_id"] = {"value": framework_id}
            framework_info["id"] = {"value": framework_id}
        self._nursery = nursery
        since = len(self.events)
        await nursery.start(self._read_stream, call)
        event = await self.wait_for(lambda e: e["type"] in ("SUBSCRIBED", "ERROR"), since=since)
        if event["type"] == "SUBSCRIBED":
            self.framework_id = event["subscribed"]["framework_id"]["value"]
        return event

    async def _read_stream(
        self, call: dict[str, Any], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.calls.append(call)
        self.stream_closed = trio.Event()
        decoder = RecordIODecoder()
        self._stream_scope = trio.CancelScope()
        try:
            with self._stream_scope:
                async with self._client.stream(
                    "POST", self.url, json=call, headers={"Accept": "application/json"}
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        raise RuntimeError(
                            f"SUBSCRIBE failed: {response.status_code} {response.text}"
                        )
                    self.stream_id = response.headers["Mesos-Stream-Id"]
                    task_status.started()
                    async for chunk in response.aiter_bytes():
                        for record in decoder.feed(chunk):
                            self._received(json.loads(record))
        except (httpx.HTTPError, trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # the master closed the stream, or the test is over
        finally:
            self.stream_closed.set()

    def _received(self, event: Event) -> None:
        self.events.append(event)
        self._new_event.set()
        self._new_event = trio.Event()
        if self.auto_ack and event["type"] == "UPDATE" and "uuid" in event["update"]["status"]:
            assert self._nursery is not None
            self._nursery.start_soon(self._auto_acknowledge, event["update"]["status"])

    async def _auto_acknowledge(self, status: Mapping[str, Any]) -> None:
        # If the master went away (a failover), the agent sends the update again.
        with contextlib.suppress(httpx.TransportError):
            await self.acknowledge(status)

    async def disconnect(self) -> None:
        """Close the event stream, as a crashed scheduler would."""
        if self._stream_scope is not None:
            self._stream_scope.cancel()
        await self.stream_closed.wait()

    async def call(self, call: dict[str, Any], *, stream_id: str | None = None) -> httpx.Response:
        """Send a call (framework id and stream id filled in); return the raw response."""
        if self.framework_id is not None:
            call.setdefault("framework_id", {"value": self.framework_id})
        self.calls.append(call)
        headers = {"Mesos-Stream-Id": stream_id or self.stream_id or ""}
        return await self._client.post(self.url, json=call, headers=headers)

    async def acknowledge(self, status: Mapping[str, Any]) -> httpx.Response:
        return await self.call(
            {
                "type": "ACKNOWLEDGE",
                "acknowledge": {
                    "agent_id": status["agent_id"],
                    "task_id": status["task_id"],
                    "uuid": status["uuid"],
                },
            }
        )

    async def wait_for(
        self, predicate: Callable[[Event], bool], *, since: int = 0, timeout: float = 10.0
    ) -> Event:
        """The first event from index ``since`` on that matches ``predicate``."""
        with trio.fail_after(timeout):
            index = since
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if predicate(event):
                        return event
                await self._new_event.wait()

    async def wait_offers(self, *, since: int = 0, timeout: float = 10.0) -> list[Event]:
        event = await self.wait_for(lambda e: e["type"] == "OFFERS", since=since, timeout=timeout)
        offers: list[Event] = event["offers"]["offers"]
        return offers

    async def wait_update(
        self, task_id: str, state: str, *, since: int = 0, timeout: float = 10.0
    ) -> Event:
        """The TaskStatus of the first UPDATE for ``task_id`` in ``state``."""
        event = await self.wait_for(
            lambda e: (
                e["type"] == "UPDATE"
                and e["update"]["status"]["task_id"]["value"] == task_id
                and e["update"]["status"]["state"] == state
            ),
            since=since,
            timeout=timeout,
        )
        status: Event = event["update"]["status"]
        return status

    def states(self, task_id: str) -> list[str]:
        """Every state reported for ``task_id`` so far, in order (resends included)."""
        return [
            e["update"]["status"]["state"]
            for e in self.events
            if e["type"] == "UPDATE" and e["update"]["status"]["task_id"]["value"] == task_id
        ]

    async def accept(
        self,
        offers: Sequence[Mapping[str, Any]],
        operations: Sequence[Mapping[str, Any]],
        **accept: Any,
    ) -> httpx.Response:
        return await self.call(
            {
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [o["id"] for o in offers],
                    "operations": list(operations),
                    **accept,
                },
            }
        )

    async def launch(
        self, offers: Sequence[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]], **accept: Any
    ) -> httpx.Response:
        operation = {"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}
        return await self.accept(offers, [operation], **accept)

    async def launch_group(
        self,
        offers: Sequence[Mapping[str, Any]],
        executor: Mapping[str, Any],
        tasks: Sequence[Mapping[str, Any]],
        **accept: Any,
    ) -> httpx.Response:
        """ACCEPT with one LAUNCH_GROUP: ``tasks`` run together under ``executor``."""
        return await self.accept(offers, [launch_group_operation(executor, tasks)], **accept)

    async def decline(
        self, offers: Sequence[Mapping[str, Any]], refuse_seconds: float
    ) -> httpx.Response:
        return await self.call(
            {
                "type": "DECLINE",
                "decline": {
                    "offer_ids": [o["id"] for o in offers],
                    "filters": {"refuse_seconds": refuse_seconds},
                },
            }
        )


class NullFramework:
    """The "null framework": accepts offers to launch ``sleep`` tasks, acknowledges updates.

    ``await NullFramework(client).launch(nursery, 100)`` subscribes (unless already
    subscribed), launches 100 tasks (at most ``tasks_per_offer`` per offer; ``None``
    fills each offer), declines surplus offers for an hour once every task is
    launched, and returns when all of them report TASK_RUNNING. ``offers_seen`` and
    ``accepts`` count what it got and sent.

    With ``group_size`` the tasks are launched ``group_size`` at a time as task groups
    (one LAUNCH_GROUP operation each, the last group may be smaller), each under a new
    DEFAULT executor of ``executor_cpus``, ``executor_mem`` and ``executor_disk``;
    ``groups`` lists the task ids of each group by executor id.
    """

    def __init__(
        self,
        client: SchedulerClient,
        *,
        command: str = "sleep 3600",
        cpus: float = 0.1,
        mem: float = 32.0,
        tasks_per_offer: int | None = None,
        prefix: str = "null",
        group_size: int | None = None,
        executor_cpus: float = 0.1,
        executor_mem: float = 32.0,
        executor_disk: float = 10.0,
    ) -> None:
        self.client = client
        self.command = command
        self.cpus = cpus
        self.mem = mem
        self.tasks_per_offer = tasks_per_offer
        self.prefix = prefix
        self.group_size = group_size
        self.executor_resources = {
            "cpus": executor_cpus,
            "mem": executor_mem,
            "disk": executor_disk,
        }
        self.launched: list[str] = []
        self.groups: dict[str, list[str]] = {}
        self.running: set[str] = set()
        self.offers_seen = 0
        self.accepts = 0

    async def launch(self, nursery: trio.Nursery, count: int, *, timeout: float = 600.0) -> None:
        client = self.client
        index = len(client.events)  # offers may arrive together with SUBSCRIBED
        if client.framework_id is None:
            await client.subscribe(nursery, name="null-framework")
        target = len(self.launched) + count
        with trio.fail_after(timeout):
            async with trio.open_nursery() as calls:
                while len(self.running) < target:
                    while index >= len(client.events):
                        await client.wait_for(lambda e: True, since=index)
                    event = client.events[index]
                    index += 1
                    if event["type"] == "OFFERS":
                        surplus = [
                            offer
                            for offer in event["offers"]["offers"]
                            if not self._use(calls, offer, target)
                        ]
                        if surplus:  # one DECLINE for all of them
                            calls.start_soon(self.client.decline, surplus, 3600.0)
                    elif event["type"] == "UPDATE":
                        status = event["update"]["status"]
                        if status["state"] == "TASK_RUNNING":
                            self.running.add(status["task_id"]["value"])

    def _use(self, calls: trio.Nursery, offer: Mapping[str, Any], target: int) -> bool:
        """Launch what fits on ``offer``; False if nothing does (the offer is surplus)."""
        self.offers_seen += 1
        free = {r["name"]: r["scalar"]["value"] for r in offer["resources"] if "scalar" in r}
        room = target - len(self.launched)
        if self.tasks_per_offer is not None:
            room = min(room, self.tasks_per_offer)
        operations: list[dict[str, Any]] = []
        tasks: list[dict[str, Any]] = []
        while room > 0:
            size = min(self.group_size or 1, room)
            need = {"cpus": size * self.cpus, "mem": size * self.mem}
            if self.group_size:
                need = {k: need.get(k, 0.0) + v for k, v in self.executor_resources.items()}
            if any(free.get(name, 0.0) < value - 1e-9 for name, value in need.items()):
                break
            for name, value in need.items():
                free[name] -= value
            room -= size
            unit = []
            for _ in range(size):
                task_id = f"{self.prefix}.{len(self.launched)}"
                self.launched.append(task_id)
                unit.append(task_info(offer, task_id, self.command, cpus=self.cpus, mem=self.mem))
            if self.group_size:
                executor_id = f"{self.prefix}.executor.{len(self.groups)}"
                self.groups[executor_id] = [t["task_id"]["value"] for t in unit]
                executor = executor_info(
                    str(self.client.framework_id),
                    executor_id,
                    role=offer.get("allocation_info", {}).get("role", "*"),
                    **self.executor_resources,
                )
                operations.append(launch_group_operation(executor, unit))
            else:
                tasks.extend(unit)
        if tasks:
            operations.append({"type": "LAUNCH", "launch": {"task_infos": tasks}})
        if not operations:
            return False
        self.accepts += 1
        calls.start_soon(
            partial(self.client.accept, [offer], operations, filters={"refuse_seconds": 0})
        )
        return True
