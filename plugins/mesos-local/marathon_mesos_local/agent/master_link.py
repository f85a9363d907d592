"""The agent's link to its master: registration, re-registration, pings, reports.

The agent registers until the master answers and keeps its id across
re-registrations. It re-registers when asked (the master refused an update as coming
from an unregistered agent), when the master has stopped pinging it for longer than
the master takes to give it up, and at once when another master answers at the
master's address (a failover). A stopping agent unregisters: it leaves for good.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from marathon_mesos_local.agent.model import AgentOptions, ExecutorRun
from marathon_mesos_local.agent.store import TaskStore

__all__ = ["MasterLink"]

log = logging.getLogger(__name__)


class MasterLink:
    """Who this agent is to its master, and the messages it sends it."""

    def __init__(self, options: AgentOptions, store: TaskStore) -> None:
        self.options = options
        self.store = store
        self.agent_id: str | None = None
        #: The id of the master this agent registered with (a new one means a failover).
        self.master_id: str | None = None
        #: Where this agent serves (the bound port, once known).
        self.port = options.port
        #: From the master at registration: the watchdog's clock.
        self.ping_timeout = 15.0
        self.max_ping_timeouts = 5
        self.last_ping = 0.0
        self.registered = trio.Event()
        #: Successful (re-)registrations so far.
        self.registrations = 0
        self._reregister = trio.Event()
        self._client: httpx.AsyncClient | None = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[None]:
        """Open the HTTP client to the master, from this agent's own address."""
        transport = httpx.AsyncHTTPTransport(local_address=self.options.ip)
        timeout = httpx.Timeout(10.0, connect=5.0)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            self._client = client
            yield

    def pinged(self, agent_id: str | None) -> bool:
        """A ping from the master, for ``agent_id`` if given: False if that is not us."""
        if agent_id is not None and agent_id != self.agent_id:
            return False
        self.last_ping = trio.current_time()
        return True

    async def register(self) -> None:
        """(Re-)register until the master answers; the agent id is kept across calls."""
        assert self._client is not None
        while True:
            body: dict[str, Any] = {
                "hostname": self.options.ip,
                "port": self.port,
                "pid": os.getpid(),
                "resources": self.options.resources.to_json(),
                "attributes": self.options.attributes,
                "tasks": [
                    {"framework_id": t.framework_id, "task": t.info, "state": t.state}
                    for t in self.store.tasks.values()
                ],
                "executors": [
                    {"framework_id": e.framework_id, "executor": e.info}
                    for e in self.store.executors.values()
                ],
                # What a master that failed over knows of these frameworks at first.
                "frameworks": list(
                    {t.framework_id: t.framework_info for t in self.store.tasks.values()}.values()
                ),
            }
            if self.agent_id is not None:
                body["agent_id"] = self.agent_id
            try:
                response = await self._client.post(
                    f"{self.options.master}/_local/agents/register", json=body
                )
                if response.status_code == 200:
                    answer = response.json()
                    self.agent_id = str(answer["agent_id"])
                    self.master_id = answer.get("master_id")
                    self.ping_timeout = float(answer.get("ping_timeout", self.ping_timeout))
                    self.max_ping_timeouts = int(
                        answer.get("max_ping_timeouts", self.max_ping_timeouts)
                    )
                    self.last_ping = trio.current_time()
                    self.registrations += 1
                    self.registered.set()
                    return
                log.warning("registration refused: %s %s", response.status_code, response.text)
            except httpx.HTTPError as exc:
                log.info("master not reachable yet: %s", exc)
            await trio.sleep(0.2)

    async def registration_loop(self) -> None:
        """Re-register when asked; asking again while it runs asks for nothing more (a
        second re-registration would make the master drop what it is sending us)."""
        while True:
            await self._reregister.wait()
            log.warning("re-registering with the master as %s", self.agent_id)
            await self.register()
            self._reregister = trio.Event()

    async def watchdog(self) -> None:
        """Re-register when the master has stopped pinging: at once if another master
        answers at its address (it failed over), else once the master must have taken
        this agent for lost."""
        while True:
            await trio.sleep(self.ping_timeout)
            silence = trio.current_time() - self.last_ping
            if silence <= self.ping_timeout * 1.5:
                continue
            if silence > self.ping_timeout * (self.max_ping_timeouts + 2):
                log.warning("no ping from the master for %.1fs", silence)
            elif await self._master_changed():
                log.warning("a new master leads at %s", self.options.master)
            else:
                continue
            self.last_ping = trio.current_time()
            self._reregister.set()

    async def _master_changed(self) -> bool:
        """Whether the master's address is served by another master than the one this
        agent registered with (what the Mesos agent's master detector would report)."""
        assert self._client is not None
        try:
            response = await self._client.get(f"{self.options.master}/_local/master")
            return response.status_code == 200 and response.json()["id"] != self.master_id
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    async def unregister(self) -> None:
        """Tell the master this agent leaves for good (best effort: it may be gone)."""
        if self._client is None or self.agent_id is None or not self.registered.is_set():
            return
        try:
            await self._client.post(
                f"{self.options.master}/_local/agents/unregister",
                json={"agent_id": self.agent_id},
            )
        except httpx.HTTPError as exc:
            log.info("could not unregister from the master: %s", exc)

    async def report_exit(self, executor: ExecutorRun) -> None:
        """Tell the master that an executor exited (status 0, as the default executor
        exits), once and best effort as Mesos does; re-registration reconciles."""
        assert self._client is not None
        log.info("executor '%s' of framework %s exited", executor.id, executor.framework_id)
        try:
            await self._client.post(
                f"{self.options.master}/_local/agents/executor_exited",
                json={
                    "agent_id": self.agent_id,
                    "framework_id": executor.framework_id,
                    "executor_id": executor.id,
                    "status": 0,
                },
            )
        except httpx.HTTPError as exc:
            log.warning("exit of executor %s not reported: %s", executor.id, exc)

    async def send_status(self, framework_id: str, status: dict[str, Any]) -> int | None:
        """Post a status update; the master's answer, or None if it did not get there.

        A master that does not know this agent (409) makes it re-register, unless a
        registration under way when the update left has finished since.
        """
        assert self._client is not None
        registrations = self.registrations
        try:
            response = await self._client.post(
                f"{self.options.master}/_local/agents/status",
                json={"agent_id": self.agent_id, "framework_id": framework_id, "status": status},
            )
        except httpx.HTTPError as exc:
            log.info("status update for %s not delivered: %s", status["task_id"]["value"], exc)
            return None
        if response.status_code == 409 and registrations == self.registrations:
            self._reregister.set()
        return response.status_code
