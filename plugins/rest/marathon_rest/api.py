"""What every route needs from the server: its context and what it learned at startup."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import httpx
import trio
from starlette.requests import Request

from marathon_core.contracts.services import LeaderView, ServiceContext
from marathon_core.model.app import AppDefinition
from marathon_core.model.group import Group
from marathon_rest.appinfo import AppInfoCache, apps_by_id

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
    #: Seconds of silence on ``/v2/events`` before a ``: ping`` comment line.
    event_heartbeat_seconds: float = 15.0
    #: Seconds a ``/v2/events`` client may fall behind (with a full buffer) before it is cut.
    event_max_lag_seconds: float = 10.0
    #: Encoded app entries, reused until the app or its instances change.
    infos: AppInfoCache = attrs.field(factory=AppInfoCache)
    _sorted_apps: tuple[Group | None, list[AppDefinition]] = attrs.field(
        init=False, factory=lambda: (None, [])
    )

    def sorted_apps(self, root: Group) -> list[AppDefinition]:
        """Every app of ``root`` ordered by id, computed once per root (from the last).

        A new root also lets the encoded entries of apps that are gone be dropped.
        """
        last_root, last_apps = self._sorted_apps
        if last_root is not root:
            last = (last_root, last_apps) if last_root is not None else None
            self._sorted_apps = (root, apps_by_id(root, last))
            self.infos.prune(self._sorted_apps[1])
        return self._sorted_apps[1]

    @property
    def live(self) -> LeaderView | None:
        """The leader's live view (None when this process does not lead)."""
        return self.ctx.leader

    @property
    def address(self) -> str:
        """This process's ``host:port`` as clients reach its API."""
        return f"{self.ctx.config.hostname}:{self.http_port}"

    @property
    def elected(self) -> bool:
        return self.ctx.leadership.is_leader

    @property
    def leader(self) -> str | None:
        """``host:port`` of the leading scheduler (this one's API address when it leads)."""
        if self.elected:
            return self.address
        return self.ctx.leadership.leader_address

    @classmethod
    def of(cls, request: Request) -> Api:
        api: Api = request.app.state.api
        return api
