"""App entries of ``/v2/apps`` (and ``/v2/groups``), encoded once and reused.

Why: with 10,000 apps and 50,000 tasks, building every entry as dicts and encoding
them on each request costs many times the bare encoding, and the garbage it leaves
sets off full collections that stall the event loop. So each entry is kept as
encoded JSON (an ``orjson.Fragment``) under what it is made of:

- the app object (apps are immutable: a new version is a new object),
- the leader's :meth:`~marathon_core.contracts.services.LeaderView.instances_generation`
  of the app, which changes with any change to one of its instances,
- the ids of the deployments that touch the app,
- the :meth:`~marathon_core.contracts.services.TaskHealth.generation` of the app,
  which changes with any health change of one of its tasks.

A response joins the fragments; only entries whose inputs changed are encoded again.
Without a leader's live view (a standby), entries are encoded on each request and
not kept.

The encoded tasks (each task, and the entries with tasks) are kept for the apps
used last, up to ``TASK_CACHE_BYTES`` of JSON: keeping them for every app served
held the tasks' JSON twice over, more than the instances themselves. The app just
served is kept even when it alone is larger, so that a client polling one large app
does not encode every task of it on each request. What is kept is copied out of
orjson's output buffer (:func:`_dumps`).

The encoded forms are byte for byte what ``orjson.dumps`` makes of the entry as a
dict (:func:`app_info`), so splicing never changes what a response contains.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import app_to_json, task_to_json
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import AppChanges, Group, app_changes
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Condition, Instance, InstanceId

if TYPE_CHECKING:
    from marathon_core.contracts.services import LeaderView, TaskHealth

__all__ = [
    "TASK_CACHE_BYTES",
    "AppInfoCache",
    "app_info",
    "apps_by_id",
    "deployments_by_app",
    "task_json",
]

#: Encoded tasks kept (bytes of JSON), for the apps used last: 10,000 tasks of a
#: typical size take about 14 MB (each task, and the entry with all of them).
TASK_CACHE_BYTES = 32 * 2**20

_STAGED = frozenset({Condition.PROVISIONED, Condition.STAGING, Condition.STARTING})


def _live(instances: Iterable[Instance]) -> list[Instance]:
    return [i for i in instances if i.task is not None and not i.task.condition.is_terminal]


def _counts(
    instances: Sequence[Instance],
    deployment_ids: Sequence[str],
    health: TaskHealth | None = None,
) -> dict[str, Any]:
    """The keys ``/v2/apps`` adds to an app's definition, in Marathon's order."""
    healthy, unhealthy = health.counts(instances) if health is not None else (0, 0)
    return {
        "tasksStaged": sum(1 for i in instances if i.condition in _STAGED),
        "tasksRunning": sum(1 for i in instances if i.condition is Condition.RUNNING),
        "tasksHealthy": healthy,
        "tasksUnhealthy": unhealthy,
        "deployments": [{"id": d} for d in deployment_ids],
    }


def task_json(
    instance: Instance, app: AppDefinition | None, health: TaskHealth | None
) -> dict[str, Any]:
    """A live task as the API shows it, with ``healthCheckResults`` when its app has
    Marathon-side checks."""
    assert instance.task is not None
    results = health.results(instance) if health is not None else None
    return task_to_json(instance, instance.task, app=app, health_check_results=results)


def app_info(
    app: AppDefinition,
    instances: Sequence[Instance],
    deployment_ids: Sequence[str],
    *,
    with_tasks: bool,
    health: TaskHealth | None = None,
) -> dict[str, Any]:
    """An app as ``/v2/apps`` shows it: definition, task counts, deployments, tasks.

    The reference form of an entry; :class:`AppInfoCache` makes the same bytes.
    """
    out = app_to_json(app)
    out.update(_counts(instances, deployment_ids, health))
    if with_tasks:
        out["tasks"] = [task_json(i, app, health) for i in _live(instances)]
    return out


def deployments_by_app(deployments: Iterable[Deployment]) -> dict[PathId, tuple[str, ...]]:
    """App id -> ids of the deployments touching it, in the order given."""
    out: dict[PathId, list[str]] = {}
    for deployment in deployments:
        for app_id in deployment.affected_app_ids():
            out.setdefault(app_id, []).append(deployment.id)
    return {app_id: tuple(ids) for app_id, ids in out.items()}


def _order(app: AppDefinition) -> tuple[tuple[str, ...], bool]:
    """The sort key of an app: its id's fields as a tuple, which is how PathId orders."""
    return (app.id.path, app.id.absolute)


#: More changes than this between two roots and sorting afresh is cheaper.
_RESORT_LIMIT = 256


def apps_by_id(
    root: Group, previous: tuple[Group, list[AppDefinition]] | None = None
) -> list[AppDefinition]:
    """Every app of ``root`` ordered by id.

    ``previous`` is an earlier root with its result: when few apps differ (a write
    between two listings), its list is patched instead of sorting all apps again.
    """
    if previous is not None:
        patched = _patched(previous[1], app_changes(previous[0], root))
        if patched is not None:
            return patched
    return sorted(root.transitive_apps(), key=_order)


def _patched(apps: list[AppDefinition], changes: AppChanges) -> list[AppDefinition] | None:
    """``apps`` (sorted by id) with ``changes`` applied; None when sorting is the better
    way (many changes) or ``apps`` does not match the changes."""
    if len(changes.changed) + len(changes.removed) > _RESORT_LIMIT:
        return None
    out = list(apps)
    for app_id in changes.removed:
        i = bisect.bisect_left(out, (app_id.path, app_id.absolute), key=_order)
        if i == len(out) or out[i].id != app_id:
            return None
        del out[i]
    for app_id, app in changes.changed.items():
        i = bisect.bisect_left(out, (app_id.path, app_id.absolute), key=_order)
        present = i < len(out) and out[i].id == app_id
        if present != (app_id in changes.previous):
            return None
        if present:
            out[i] = app
        else:
            out.insert(i, app)
    return out


def _dumps(obj: Any) -> bytes:
    """``orjson.dumps(obj)`` in a bytes object of its own size, for keeping.

    Why: orjson returns its output in the buffer it wrote it to, 4 kB for a task of
    400 bytes (64 kB for 5 kB); kept for 100,000 tasks, that was 400 MB.
    """
    return bytes(memoryview(orjson.dumps(obj)))


def _splice(head: bytes, tail: Mapping[str, Any]) -> bytes:
    """``orjson.dumps({**loads(head), **tail})`` for a non-empty object ``head`` whose keys
    are not in ``tail``, without decoding ``head``."""
    return b"".join((head[:-1], b",", orjson.dumps(tail)[1:]))


#: (app, instances generation, health generation, deployment ids, encoded entry)
_Entry = tuple[AppDefinition, int, int, tuple[str, ...], orjson.Fragment]
#: (instance, app, task health, encoded task)
_TaskEntry = tuple[Instance, AppDefinition, object, bytes]


class AppInfoCache:
    """Encoded app definitions, tasks and ``/v2/apps`` entries; see the module docstring."""

    def __init__(self, task_cache_bytes: int = TASK_CACHE_BYTES) -> None:
        self._apps: dict[PathId, tuple[AppDefinition, bytes]] = {}
        self._tasks: dict[PathId, dict[InstanceId, _TaskEntry]] = {}
        #: Entries without tasks, and entries with tasks.
        self._entries: tuple[dict[PathId, _Entry], dict[PathId, _Entry]] = ({}, {})
        #: The live view whose generations the entries hold (a new term has a new one).
        self._live: weakref.ref[LeaderView] | None = None
        self._task_cache_bytes = task_cache_bytes
        #: Per app with encoded tasks kept, least recently used first: the bytes of
        #: its tasks and of its entry with tasks.
        self._held: dict[PathId, tuple[int, int]] = {}
        self.held_bytes = 0

    def app_bytes(self, app: AppDefinition) -> bytes:
        """``orjson.dumps(app_to_json(app))``, computed once per app version."""
        cached = self._apps.get(app.id)
        if cached is None or cached[0] is not app:
            cached = (app, _dumps(app_to_json(app)))
            self._apps[app.id] = cached
        return cached[1]

    def app_fragment(self, app: AppDefinition) -> orjson.Fragment:
        return orjson.Fragment(self.app_bytes(app))

    def _task_fragments(
        self, app: AppDefinition, instances: Sequence[Instance], health: TaskHealth | None
    ) -> list[orjson.Fragment]:
        """Encoded live tasks of ``instances``; encodings of other instances are dropped."""
        old = self._tasks.get(app.id, {})
        new: dict[InstanceId, _TaskEntry] = {}
        size = 0
        for instance in _live(instances):
            entry = old.get(instance.instance_id)
            # The monitor hands out the same health object until the task's health changes.
            task_health = health.health_of(instance) if health is not None else None
            if (
                entry is None
                or entry[0] is not instance
                or entry[1] is not app
                or entry[2] is not task_health
            ):
                encoded = _dumps(task_json(instance, app, health))
                entry = (instance, app, task_health, encoded)
            new[instance.instance_id] = entry
            size += len(entry[3])
        if new:
            self._tasks[app.id] = new
        else:
            self._tasks.pop(app.id, None)
        self._charge(app.id, tasks=size)
        return [orjson.Fragment(e[3]) for e in new.values()]

    def _charge(
        self, app_id: PathId, *, tasks: int | None = None, entry: int | None = None
    ) -> None:
        """Count ``app_id``'s encoded tasks as used last (with their new sizes where
        given), then forget the tasks of the apps used least recently while more than
        ``task_cache_bytes`` are kept."""
        before = self._held.pop(app_id, (0, 0))
        after = (before[0] if tasks is None else tasks, before[1] if entry is None else entry)
        self.held_bytes += sum(after) - sum(before)
        if any(after):
            self._held[app_id] = after
        while self.held_bytes > self._task_cache_bytes and len(self._held) > 1:
            oldest = next(iter(self._held))
            if oldest == app_id:
                break
            self._forget_tasks(oldest)

    def _forget_tasks(self, app_id: PathId) -> None:
        self.held_bytes -= sum(self._held.pop(app_id, (0, 0)))
        self._tasks.pop(app_id, None)
        self._entries[True].pop(app_id, None)

    def encode(
        self,
        app: AppDefinition,
        instances: Sequence[Instance],
        deployment_ids: Sequence[str],
        *,
        with_tasks: bool,
        health: TaskHealth | None = None,
    ) -> orjson.Fragment:
        """The entry of ``app`` encoded now (through the app and task encodings)."""
        return orjson.Fragment(
            self._encode(app, instances, deployment_ids, with_tasks=with_tasks, health=health)
        )

    def _encode(
        self,
        app: AppDefinition,
        instances: Sequence[Instance],
        deployment_ids: Sequence[str],
        *,
        with_tasks: bool,
        health: TaskHealth | None,
    ) -> bytes:
        tail = _counts(instances, deployment_ids, health)
        if with_tasks:
            tail["tasks"] = self._task_fragments(app, instances, health)
        return _splice(self.app_bytes(app), tail)

    def entries(
        self,
        apps: Sequence[AppDefinition],
        live: LeaderView,
        deployments: Mapping[PathId, tuple[str, ...]],
        *,
        with_tasks: bool,
    ) -> list[orjson.Fragment]:
        """The entries of ``apps`` (in order) with their instances and their tasks'
        health from the leader's ``live`` view."""
        if self._live is None or self._live() is not live:
            for stale in self._entries:
                stale.clear()
            self._tasks.clear()
            self._held.clear()
            self.held_bytes = 0
            self._live = weakref.ref(live)
        cache = self._entries[with_tasks]
        health = live.health
        generation = live.instances_generation
        health_generation = health.generation
        out = []
        for app in apps:
            app_id = app.id
            gen = generation(app_id)
            health_gen = health_generation(app_id)
            deployed = deployments.get(app_id, ()) if deployments else ()
            entry = cache.get(app_id)
            if (
                entry is None
                or entry[0] is not app
                or entry[1] != gen
                or entry[2] != health_gen
                or entry[3] != deployed
            ):
                encoded = self._encode(
                    app,
                    live.instances_of(app_id),
                    deployed,
                    with_tasks=with_tasks,
                    health=health,
                )
                entry = (app, gen, health_gen, deployed, orjson.Fragment(encoded))
                cache[app_id] = entry
                if with_tasks:
                    self._charge(app_id, entry=len(encoded))
            elif with_tasks:
                self._charge(app_id)
            out.append(entry[4])
        return out

    def prune(self, current: Collection[AppDefinition]) -> None:
        """Forget apps that are not ``current`` (all apps of the root), when there can be any.

        Entries are only made for apps of a current root, so the stale entries of a
        cache no larger than ``current`` are at most as many as the apps: pruning waits
        until a cache is larger, which keeps the scan off the path of most requests.
        """
        caches = (self._apps, self._tasks, *self._entries)
        if all(len(cache) <= len(current) for cache in caches):
            return
        live = {a.id for a in current}
        for app_id in [k for k in self._held if k not in live]:
            self._forget_tasks(app_id)
        for cache in caches:
            for app_id in [k for k in cache if k not in live]:
                del cache[app_id]
