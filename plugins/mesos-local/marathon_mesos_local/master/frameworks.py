"""Frameworks coming and going: SUBSCRIBE and its event stream, disconnection and
the failover timeout, UPDATE_FRAMEWORK, and removal (TEARDOWN, the operator's
TEARDOWN, an expired failover timeout).

A framework's stream is a RecordIO body that stays open: events are queued on it
(see :class:`~.model.Subscription`), heartbeats are written every
``heartbeat_interval``, and the framework counts as disconnected the moment the
subscriber goes away.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

import trio

from marathon_mesos_local.background import Background
from marathon_mesos_local.http import JSON, Response, Send
from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.model import (
    AllocationTrigger,
    Framework,
    MasterIdentity,
    MasterOptions,
    Subscription,
)
from marathon_mesos_local.master.offers import Allocator
from marathon_mesos_local.messages import id_value, mesos_id

__all__ = ["Subscriptions", "framework_info_error"]

log = logging.getLogger(__name__)


class Subscriptions:
    """The frameworks' subscriptions, from SUBSCRIBE to removal."""

    def __init__(
        self,
        books: Books,
        allocator: Allocator,
        trigger: AllocationTrigger,
        options: MasterOptions,
        identity: MasterIdentity,
    ) -> None:
        self.books = books
        self.allocator = allocator
        self.trigger = trigger
        self.options = options
        self.identity = identity
        self._framework_numbers = itertools.count()
        self._background = Background()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the failover timers of disconnected frameworks until cancelled."""
        await self._background.run(task_status=task_status)

    def subscribe(self, call: Mapping[str, Any]) -> Response:
        """SUBSCRIBE: a new framework, or a known one coming back (scheduler failover, or
        a framework of the master before a failover); answered with its event stream."""
        subscribe = call["subscribe"]
        info = dict(subscribe["framework_info"])
        suppressed = list(subscribe.get("suppressed_roles", []))
        framework_id = id_value(info.get("id"))
        send, receive = trio.open_memory_channel[tuple[bytes, bool]](math.inf)
        subscription = Subscription(str(uuid.uuid4()), send)
        headers = [("Content-Type", JSON), ("Mesos-Stream-Id", subscription.stream_id)]

        error = framework_info_error(info, suppressed)
        if error is None and framework_id in self.books.removed_framework_ids:
            error = "Framework has been removed"
        if error is not None:
            subscription.event({"type": "ERROR", "error": {"message": error}})
            subscription.close()
            return Response(200, headers=headers, stream=partial(self._pump, subscription, receive))

        framework = self.books.frameworks.get(framework_id) if framework_id else None
        if framework is None:
            failover = framework_id is not None
            if framework_id is None:
                framework_id = f"{self.identity.id}-{next(self._framework_numbers):04d}"
            info["id"] = mesos_id(framework_id)
            framework = Framework(framework_id, info, time.time())
            self.books.frameworks[framework_id] = framework
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
                self.allocator.discard(framework, offer)
            # user and checkpoint cannot change on re-subscribe; the rest can.
            info["user"] = framework.info["user"]
            info["checkpoint"] = framework.info.get("checkpoint", False)
            info["id"] = mesos_id(framework.id)
            framework.info = info
            framework.reregistered_time = time.time()
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
                    "framework_id": mesos_id(framework.id),
                    "heartbeat_interval_seconds": float(self.options.heartbeat_interval),
                    "master_info": self.identity.info,
                },
            }
        )
        subscription.event({"type": "HEARTBEAT"})  # Mesos's heartbeater starts with no delay
        self.trigger.request()
        return Response(
            200,
            headers=headers,
            stream=partial(self._serve_stream, framework, subscription, receive),
        )

    async def _pump(
        self,
        subscription: Subscription,
        receive: trio.MemoryReceiveChannel[tuple[bytes, bool]],
        send: Send,
    ) -> None:
        async with receive:
            async for chunk, answer in receive:
                subscription.taken(answer)
                await send(chunk)

    async def _serve_stream(
        self,
        framework: Framework,
        subscription: Subscription,
        receive: trio.MemoryReceiveChannel[tuple[bytes, bool]],
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
                await self._pump(subscription, receive, send)
                nursery.cancel_scope.cancel()
        finally:
            subscription.closed = True
            if framework.stream is subscription:
                self._disconnected(framework)

    def _disconnected(self, framework: Framework) -> None:
        log.info("framework %s disconnected", framework.id)
        framework.stream = None
        framework.unregistered_time = time.time()
        framework.filters.clear()  # the allocator drops them on deactivation
        for offer in list(framework.offers.values()):
            self.allocator.discard(framework, offer)
        framework.disconnections += 1
        if self._background.running:
            self._background.start_soon(
                self._failover_timer,
                framework,
                framework.disconnections,
                float(framework.info.get("failover_timeout", 0.0)),
            )
        self.trigger.request()

    async def _failover_timer(self, framework: Framework, generation: int, timeout: float) -> None:
        """Remove a framework that has not re-subscribed within its ``failover_timeout``."""
        await trio.sleep(timeout)
        if (
            framework.stream is None
            and framework.disconnections == generation
            and self.books.frameworks.get(framework.id) is framework
        ):
            log.info("framework %s failover timeout (%ss) expired", framework.id, timeout)
            self.remove(framework)

    def teardown(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """TEARDOWN: the framework leaves for good."""
        self.remove(framework)

    def remove(self, framework: Framework) -> None:
        """Forget a framework: kill its tasks, drop its offers, close its stream."""
        log.info("removing framework %s", framework.id)
        for offer in list(framework.offers.values()):
            self.allocator.discard(framework, offer)
        agents = set()
        for task in list(framework.tasks.values()):
            self.books.free(task)
            agent = self.books.agents.get(task.agent_id)
            if agent is not None:
                agent.tasks.pop((framework.id, task.id), None)
                agents.add(agent)
            framework.completed_tasks.append(task)
        framework.tasks.clear()
        framework.completed_tasks.extend(framework.unreachable_tasks.values())
        framework.unreachable_tasks.clear()
        for executor in list(framework.executors.values()):
            if executor.agent_id in self.books.agents:
                agents.add(self.books.agents[executor.agent_id])
            self.books.remove_executor(executor)
        for agent in agents:
            agent.send("shutdown_framework", {"framework_id": framework.id})
        if framework.stream is not None:
            stream, framework.stream = framework.stream, None
            stream.close()
        framework.unregistered_time = time.time()
        self.books.frameworks.pop(framework.id, None)
        self.books.removed_framework_ids.add(framework.id)
        self.books.completed_frameworks.append(framework)
        self.trigger.request()

    def update(self, framework: Framework, call: Mapping[str, Any]) -> Response:
        """UPDATE_FRAMEWORK: new roles, suppressed roles and the rest of the info."""
        update = call["update_framework"]
        info = dict(update["framework_info"])
        suppressed = list(update.get("suppressed_roles", []))
        error = framework_info_error(info, suppressed)
        for key in ("principal", "user", "checkpoint"):
            if info.get(key) != framework.info.get(key):
                error = error or f"Updating 'FrameworkInfo.{key}' is unsupported"
        if error:
            return Response.text(400, error)
        old_roles = set(framework.roles)
        framework.info = info
        for offer in list(framework.offers.values()):
            if offer.role not in framework.roles:
                self.allocator.rescind(framework, offer)
        for role in framework.suppressed - set(suppressed):
            self.allocator.clear_filters(framework, role)
        framework.suppressed = set(suppressed)
        if set(framework.roles) != old_roles:
            self.trigger.request()
        return Response(200)


def framework_info_error(info: Mapping[str, Any], suppressed: Iterable[str]) -> str | None:
    """What Mesos finds wrong with a ``FrameworkInfo`` (and its suppressed roles)."""
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
