"""The master as a whole: its parts wired together, its lifecycle, its HTTP routes."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import trio

from marathon_mesos_local import MESOS_VERSION
from marathon_mesos_local.http import Request, Response, serve_http
from marathon_mesos_local.master.agents import Membership
from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.frameworks import Subscriptions
from marathon_mesos_local.master.launch import Launcher
from marathon_mesos_local.master.model import (
    Agent,
    AllocationTrigger,
    Framework,
    MasterIdentity,
    MasterOptions,
)
from marathon_mesos_local.master.offers import Allocator
from marathon_mesos_local.master.operator import OperatorApi
from marathon_mesos_local.master.registry import Registry, UnreachableAgent
from marathon_mesos_local.master.scheduler_api import SchedulerApi
from marathon_mesos_local.master.state import master_state
from marathon_mesos_local.master.tasks import Tasks

__all__ = ["Master"]

log = logging.getLogger(__name__)


class Master:
    """One Mesos master: call :meth:`run` in a nursery to serve it."""

    def __init__(self, options: MasterOptions | None = None) -> None:
        self.options = options or MasterOptions()
        self.identity = MasterIdentity(self.options.host, self.options.port)
        #: Raises RegistryError for a registry file this master cannot use.
        registry = Registry.open(self.options.work_dir)
        trigger = AllocationTrigger()
        self.books = Books(registry, trigger)
        self.allocator = Allocator(self.books, trigger, self.options, self.identity.id)
        self.subscriptions = Subscriptions(
            self.books, self.allocator, trigger, self.options, self.identity
        )
        self.tasks = Tasks(self.books)
        self.membership = Membership(
            self.books, self.allocator, trigger, registry, self.options, self.identity
        )
        self.scheduler_api = SchedulerApi(
            self.books,
            self.subscriptions,
            self.allocator,
            Launcher(self.books, self.allocator, trigger),
            self.tasks,
            self.options.framework_authenticator,
        )
        self.operator_api = OperatorApi(self.books, self.identity, self.options, self.subscriptions)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; reports the bound port once the API answers."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.membership.run)
            await nursery.start(self.subscriptions.run)
            self.identity.port = await nursery.start(
                partial(serve_http, self.handle, host=self.options.host, port=self.options.port)
            )
            nursery.start_soon(self.allocator.run)
            log.info("mesos master %s listening on %s", self.id, self.url)
            if self.books.recovered_agents:
                log.info(
                    "recovered %d agent(s) from the registry; allowing %ss for agents to "
                    "re-register",
                    len(self.books.recovered_agents),
                    self.options.agent_reregister_timeout,
                )
                nursery.start_soon(self.membership.expire_recovered)
            task_status.started(self.identity.port)

    @property
    def id(self) -> str:
        return self.identity.id

    @property
    def port(self) -> int:
        return self.identity.port

    @property
    def url(self) -> str:
        return self.identity.url

    @property
    def frameworks(self) -> dict[str, Framework]:
        return self.books.frameworks

    @property
    def agents(self) -> dict[str, Agent]:
        return self.books.agents

    @property
    def unreachable_agents(self) -> dict[str, UnreachableAgent]:
        return self.books.unreachable_agents

    def state(self) -> dict[str, Any]:
        """``/master/state``."""
        return master_state(self.identity, self.options, self.books)

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path in ("/api/v1/scheduler", "/master/api/v1/scheduler"):
            return self.scheduler_api.handle(request)
        if path in ("/api/v1", "/master/api/v1"):
            return self.operator_api.handle(request)
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
            return await self.membership.register(request)
        if path == "/_local/agents/unregister" and request.method == "POST":
            return await self.membership.unregister(request)
        if path == "/_local/agents/status" and request.method == "POST":
            return self.tasks.agent_status(request)
        if path == "/_local/agents/executor_exited" and request.method == "POST":
            return self.tasks.agent_executor_exited(request)
        return Response(404)
