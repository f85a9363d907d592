"""What the pages show, computed from the same server state the ``/v2`` handlers read.

An app's row carries its status *and* the reason behind any status that is not
progress (Marathon's UI said "Waiting" and left users guessing): the launch queue's
placement explanation, the backoff with the last failure, or a deployment step.
"""

from __future__ import annotations

import enum
import math
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import attrs

from marathon_core.contracts.queue import QueueEntry
from marathon_core.contracts.services import LeaderView
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Condition, Instance

_STAGED = frozenset({Condition.PROVISIONED, Condition.STAGING, Condition.STARTING})

#: Rows per page unless ``?per=`` says otherwise, and the most a page may hold.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class Status(enum.Enum):
    RUNNING = "running"
    DEPLOYING = "deploying"
    SUSPENDED = "suspended"
    WAITING = "waiting"
    DELAYED = "delayed"


@attrs.frozen
class AppRow:
    """One app as the apps page lists it."""

    id: str
    status: Status
    reason: str | None
    instances: int
    running: int
    staged: int
    healthy: int
    unhealthy: int
    cpus: float
    mem: float
    deployments: tuple[str, ...]
    #: Seconds until the next launch while the app backs off (the reason counts them down).
    delay_left: float | None = None

    @property
    def countdown(self) -> tuple[str, str, str] | None:
        """The reason around its time left (before, time, after), for the ticking span."""
        if self.reason is None or self.delay_left is None:
            return None
        before, time, after = self.reason.partition(format_delay(self.delay_left))
        return (before, time, after) if time else None

    @property
    def group(self) -> str:
        return self.id.rpartition("/")[0] or "/"

    @property
    def bar(self) -> list[tuple[str, float]]:
        """Health bar segments (class, percent of the larger of target and present)."""
        unknown = max(0, self.running - self.healthy - self.unhealthy)
        parts = [
            ("healthy", self.healthy),
            ("unhealthy", self.unhealthy),
            ("unknown", unknown),
            ("staged", self.staged),
            ("unscheduled", max(0, self.instances - self.running - self.staged)),
        ]
        total = max(self.instances, self.running + self.staged) or 1
        return [(name, 100.0 * n / total) for name, n in parts if n]


def format_delay(seconds: float) -> str:
    """A backoff's time left as the page shows it; ``live.js`` ticks it down with the
    same format (``countdown`` there), so both must change together."""
    left = max(0, math.ceil(seconds))  # "1s" until it is due, never "now" early
    if left == 0:
        return "now"
    if left < 60:
        return f"{left}s"
    if left < 3600:
        return f"{left // 60}m {left % 60:02}s"
    return f"{left // 3600}h {left % 3600 // 60:02}m"


def backing_off(entry: QueueEntry) -> bool:
    return entry.not_launchable is None and entry.delay_time_left > 0 and not entry.delay_overdue


def queue_reason(entry: QueueEntry, failure: Mapping[str, Any] | None) -> tuple[Status, str]:
    """Why instances of a queued app do not launch, as one sentence."""
    if entry.not_launchable is not None:
        return Status.WAITING, entry.not_launchable
    if backing_off(entry):
        message = (
            f"backing off after task failures: next launch in {format_delay(entry.delay_time_left)}"
        )
        if failure is not None:
            message += f" (last failure: {failure.get('state')}: {failure.get('message')})"
        return Status.DELAYED, message
    details = [*entry.last_reasons, *entry.near_misses]
    if details:
        return Status.WAITING, f"{entry.count} instance(s) wait: no offer matches: {details[0]}"
    return Status.WAITING, f"{entry.count} instance(s) wait for offers"


def app_row(
    app: AppDefinition,
    instances: Sequence[Instance],
    deployments: Sequence[str],
    leader: LeaderView | None,
    entry: QueueEntry | None,
) -> AppRow:
    """``app``'s row; ``entry`` is its launch queue entry (None: nothing waits)."""
    running = sum(1 for i in instances if i.condition is Condition.RUNNING)
    staged = sum(1 for i in instances if i.condition in _STAGED)
    healthy, unhealthy = (0, 0)
    if leader is not None and app.health_checks:
        healthy, unhealthy = leader.health.counts(instances)
    reason = None
    delay_left = None
    if entry is not None and entry.count > 0:
        delay_left = entry.delay_time_left if backing_off(entry) else None
        failure = leader.last_task_failure(app.id) if leader is not None else None
        status, reason = queue_reason(entry, failure)
    elif app.instances == 0 and running == 0:
        status = Status.SUSPENDED
    elif running > 0:
        status = Status.RUNNING
    else:
        status = Status.WAITING
    if deployments:
        status = Status.DEPLOYING
    return AppRow(
        id=str(app.id),
        status=status,
        reason=reason,
        instances=app.instances,
        running=running,
        staged=staged,
        healthy=healthy,
        unhealthy=unhealthy,
        cpus=app.cpus,
        mem=app.mem,
        deployments=tuple(deployments),
        delay_left=delay_left,
    )


#: What a row is made of: app, instances generation, health generation, deployments,
#: queue entry.
_RowKey = tuple[AppDefinition, int, int, tuple[str, ...], QueueEntry | None]


class RowCache:
    """Rows kept until what they are made of changes, so a page over 10,000 apps
    (filtered, counted and sorted on all of them) rebuilds only the rows of apps
    that changed since the last page: the app object (a new version is a new
    object), the leader's instance and health generations of the app, its
    deployments and its queue entry."""

    def __init__(self) -> None:
        self._rows: dict[PathId, tuple[_RowKey, AppRow]] = {}
        self._live: weakref.ref[LeaderView] | None = None

    def rows(
        self,
        apps: Sequence[AppDefinition],
        live: LeaderView,
        deployments: Mapping[PathId, tuple[str, ...]],
    ) -> list[AppRow]:
        if self._live is None or self._live() is not live:
            self._rows.clear()
            self._live = weakref.ref(live)
        queue = {e.app_id: e for e in live.queue()}
        generation = live.instances_generation
        health_generation = live.health.generation
        out = []
        for app in apps:
            app_id = app.id
            key = (
                app,
                generation(app_id),
                health_generation(app_id),
                deployments.get(app_id, ()),
                queue.get(app_id),
            )
            cached = self._rows.get(app_id)
            if cached is None or not _same(cached[0], key):
                row = app_row(app, live.instances_of(app_id), key[3], live, key[4])
                cached = (key, row)
                self._rows[app_id] = cached
            out.append(cached[1])
        if len(self._rows) > 2 * len(apps) + 1000:  # apps removed or hidden meanwhile
            kept = {a.id for a in apps}
            self._rows = {k: v for k, v in self._rows.items() if k in kept}
        return out


def _same(old: _RowKey, new: _RowKey) -> bool:
    return old[0] is new[0] and old[1:] == new[1:]


SORT_KEYS = {
    "id": lambda r: r.id,
    "status": lambda r: (r.status.value, r.id),
    "instances": lambda r: (r.instances, r.id),
    "running": lambda r: (r.running, r.id),
    "cpus": lambda r: (r.cpus * r.instances, r.id),
    "mem": lambda r: (r.mem * r.instances, r.id),
}


@attrs.frozen
class Listing:
    """The apps page's query, as it stands in the URL (``?q=&status=&group=&sort=&page=``)."""

    q: str = ""
    status: Status | None = None
    group: str = "/"
    sort: str = "id"
    descending: bool = False
    page: int = 1
    per: int = PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Listing:
        def number(name: str, default: int, top: int) -> int:
            raw = params.get(name, "")
            return min(max(int(raw), 1), top) if raw.isdigit() else default

        status = params.get("status", "")
        sort = params.get("sort", "id")
        group = "/" + params.get("group", "/").strip("/")
        return cls(
            q=params.get("q", "").strip(),
            status=Status(status) if status in {s.value for s in Status} else None,
            group=group,
            sort=sort.lstrip("-") if sort.lstrip("-") in SORT_KEYS else "id",
            descending=sort.startswith("-"),
            page=number("page", 1, 1_000_000),
            per=number("per", PAGE_SIZE, MAX_PAGE_SIZE),
        )

    def query(self, **changes: Any) -> str:
        """This listing's URL query with ``changes`` (page resets unless given)."""
        values = attrs.asdict(self, recurse=False) | {"page": 1} | changes
        status = values["status"]
        pairs = {
            "q": values["q"],
            "status": status.value if isinstance(status, Status) else status or "",
            "group": "" if values["group"] == "/" else values["group"],
            "sort": ("-" if values["descending"] else "") + values["sort"],
            "page": "" if values["page"] == 1 else str(values["page"]),
            "per": "" if values["per"] == PAGE_SIZE else str(values["per"]),
        }
        return urlencode({k: v for k, v in pairs.items() if v and (k, v) != ("sort", "id")})

    def matches(self, app_id: str) -> bool:
        return not self.q or self.q.lower() in app_id.lower()


@attrs.frozen
class Page:
    rows: list[AppRow]
    total: int
    pages: int
    #: Direct subgroups of the listing's group holding matching apps: (id, app count).
    groups: list[tuple[str, int]]
    #: Apps per status among the matches (before the status filter).
    counts: dict[str, int]


def subgroups(group: str, app_ids: Iterable[str]) -> list[tuple[str, int]]:
    prefix = "" if group == "/" else group
    found: dict[str, int] = {}
    for app_id in app_ids:
        rest = app_id[len(prefix) + 1 :]
        if "/" in rest:
            child = f"{prefix}/{rest.split('/', 1)[0]}"
            found[child] = found.get(child, 0) + 1
    return sorted(found.items())
