"""The master's side of each agent's link: an ordered outbox, and the pinger.

Messages to an agent are queued on its outbox (:meth:`~.model.Agent.send`) and
delivered in order by one task per agent (libprocess keeps order per link); a second
task pings the agent and reports it unreachable after too many misses. Both stop
when the agent is replaced or removed (its ``scope`` is cancelled).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

from marathon_mesos_local.master.model import Agent, MasterOptions

__all__ = ["AgentLinks"]

log = logging.getLogger(__name__)


class AgentLinks:
    """The outbox senders and pingers of the registered agents."""

    def __init__(
        self, options: MasterOptions, on_unreachable: Callable[[Agent, str], Awaitable[None]]
    ) -> None:
        self.options = options
        self._on_unreachable = on_unreachable
        self._client: httpx.AsyncClient | None = None
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the links until cancelled (the HTTP client outlives them)."""
        timeout = httpx.Timeout(10.0, connect=5.0)
        async with httpx.AsyncClient(timeout=timeout) as client, trio.open_nursery() as nursery:
            self._client = client
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def open(
        self, agent: Agent, receive: trio.MemoryReceiveChannel[tuple[str, dict[str, Any]]]
    ) -> None:
        """Start delivering ``agent``'s outbox and pinging it."""
        assert self._nursery is not None
        self._nursery.start_soon(self._link, agent, receive)

    async def _link(
        self, agent: Agent, receive: trio.MemoryReceiveChannel[tuple[str, dict[str, Any]]]
    ) -> None:
        """The outbox and the pinger of one agent, until it is replaced or removed."""
        with agent.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sender, agent, receive)
                nursery.start_soon(self._pinger, agent)

    async def _sender(
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
                    await self._on_unreachable(agent, "health check timed out")
                    return
            await trio.sleep_until(started + interval)
