"""What every route needs from the server: its context and what it learned at startup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import trio
from starlette.requests import Request

from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import app_to_json, task_to_json
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Instance
from marathon_core.service import ServiceContext

if TYPE_CHECKING:
    from marathon_rest.callbacks import CallbackDispatcher


@attrs.define
class Api:
    """Shared by all routes; reached from a request with :meth:`Api.of`."""

    ctx: ServiceContext
    #: HTTP callback subscribers (``/v2/eventSubscriptions``).
    callbacks: CallbackDispatcher
    #: The port the API listens on (known once bound; ``--http_port 0`` picks one).
    http_port: int
    #: Where background work of the API runs (e.g. an abdication after the answer).
    nursery: trio.Nursery | None = None
    #: Connections to the leader, for standbys forwarding requests.
    leader_client: httpx.AsyncClient = attrs.field(factory=httpx.AsyncClient)
    framework_id: str | None = None
    #: Seconds of silence on ``/v2/events`` before a ``: ping`` comment line.
    event_heartbeat_seconds: float = 15.0
    _app_json: dict[PathId, tuple[AppDefinition, dict[str, Any]]] = attrs.field(factory=dict)
    _task_json: dict[object, tuple[Instance, AppDefinition | None, dict[str, Any]]] = attrs.field(
        factory=dict
    )

    def app_json(self, app: AppDefinition) -> dict[str, Any]:
        """``app_to_json(app)``, computed once per app version (apps are immutable).

        Callers get a shallow copy: they add top-level keys (counts, tasks).
        """
        cached = self._app_json.get(app.id)
        if cached is None or cached[0] is not app:
            cached = (app, app_to_json(app))
            self._app_json[app.id] = cached
        return dict(cached[1])

    def task_json(self, instance: Instance, app: AppDefinition | None) -> dict[str, Any]:
        """``task_to_json`` of the instance's task, computed once per instance state.

        Instances are immutable: a changed one is a new object, so identity says whether
        the cached form is current. Entries of instances gone for good are dropped by
        :meth:`forget_tasks`.
        """
        cached = self._task_json.get(instance.instance_id)
        if cached is None or cached[0] is not instance or cached[1] is not app:
            assert instance.task is not None
            cached = (instance, app, task_to_json(instance, instance.task, app=app))
            self._task_json[instance.instance_id] = cached
        return cached[2]

    def forget_tasks(self, live: Iterable[Instance]) -> None:
        """Keep cached task JSON only for ``live`` instances (bounded by the cluster)."""
        keep = {i.instance_id for i in live}
        for instance_id in [k for k in self._task_json if k not in keep]:
            del self._task_json[instance_id]

    @property
    def address(self) -> str:
        """This process's ``host:port`` as clients reach its API."""
        return f"{self.ctx.config.hostname}:{self.http_port}"

    @property
    def elected(self) -> bool:
        election = self.ctx.election
        return election is None or election.is_leader

    @property
    def leader(self) -> str | None:
        """``host:port`` of the leading scheduler (this one's API address when it leads)."""
        if self.elected:
            return self.address
        return self.ctx.election.leader_id if self.ctx.election is not None else None

    async def instances_of(self, app_id: PathId) -> list[Instance]:
        """An app's instances: the leader's live view, or the stored ones."""
        leader = self.ctx.leader
        if leader is not None:
            return leader.tracker.instances_of(app_id)
        return list(await self.ctx.state.instances.by_app(app_id))

    async def all_instances(self) -> list[Instance]:
        leader = self.ctx.leader
        if leader is not None:
            return leader.tracker.all_instances()
        return list(await self.ctx.state.instances.all())

    @classmethod
    def of(cls, request: Request) -> Api:
        api: Api = request.app.state.api
        return api
