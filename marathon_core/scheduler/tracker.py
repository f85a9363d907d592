"""The instance tracker: the in-memory view of every instance, and its only writer.

Every change is stored before it becomes visible and before anyone acts on it in
Mesos (design rule "write state, then act"): after a crash the next leader reads
what was decided and reconciles, so nothing launched is forgotten and nothing is
launched twice. Changes go through :meth:`InstanceTracker.apply`, which computes
them under one lock from the current view, persists them in one transaction (one
rewrite per app, see ``state/repositories.py``), then applies them to memory,
publishes ``instance_changed_event`` for condition changes, and wakes
:meth:`InstanceTracker.wait_changed`.

Readers that follow every change pay for what changed, not for the size of an app
(at 10,000 instances an app sees thousands of changes while it launches): the
tracker keeps per-app :class:`InstanceCounts` up to date with each change, and tells
each :meth:`~InstanceTracker.follow`-er which instances changed.

The deployment executor uses five calls: :meth:`~InstanceTracker.schedule`,
:meth:`~InstanceTracker.decommission`, :meth:`~InstanceTracker.instances_of`,
:meth:`~InstanceTracker.counts_of` and :meth:`~InstanceTracker.wait_changed`. The
scheduler drives the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import attrs
import trio

from marathon_core.events import EventBus
from marathon_core.model.app import AppDefinition
from marathon_core.model.events import instance_changed_event
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    Condition,
    Goal,
    Instance,
    InstanceCounts,
    InstanceId,
)
from marathon_core.state.storage import Op
from marathon_core.state.store import StateStore

__all__ = ["Changes", "InstanceFeed", "InstanceTracker", "TrackerStatistics"]

log = logging.getLogger(__name__)


@attrs.frozen
class Changes:
    """Instances to store (new or changed) and instances to forget."""

    put: tuple[Instance, ...] = ()
    expunge: tuple[InstanceId, ...] = ()
    #: The last state of expunged instances, published as their final change.
    final: tuple[Instance, ...] = ()
    #: Plans more writes for the same transaction (an app's last task failure).
    also: Callable[[], Awaitable[Sequence[Op]]] | None = None

    def __bool__(self) -> bool:
        return bool(self.put or self.expunge)


class InstanceFeed:
    """What changed since its follower last took it: per app, the ids of instances
    stored or expunged, or None for "look at the whole app" (a version of it became
    known, which may change what its existing instances run)."""

    def __init__(self) -> None:
        self._changed: dict[PathId, set[InstanceId] | None] = {}

    def take(self) -> dict[PathId, set[InstanceId] | None]:
        """Everything changed since the last call (and forget it)."""
        changed, self._changed = self._changed, {}
        return changed

    def add_instance(self, app_id: PathId, instance_id: InstanceId) -> None:
        ids = self._changed.setdefault(app_id, set())
        if ids is not None:
            ids.add(instance_id)

    def add_app(self, app_id: PathId) -> None:
        self._changed[app_id] = None


class _Counter:
    """An app's :class:`InstanceCounts`, kept as its instances change."""

    __slots__ = ("active", "active_running", "present")

    def __init__(self) -> None:
        self.active = self.present = self.active_running = 0

    def add(self, instance: Instance, sign: int) -> None:
        if instance.condition.is_terminal:
            return
        self.present += sign
        if instance.goal is Goal.RUNNING:
            self.active += sign
            if instance.condition is Condition.RUNNING:
                self.active_running += sign

    def snapshot(self) -> InstanceCounts:
        return InstanceCounts(self.active, self.present, self.active_running)


@attrs.frozen
class TrackerStatistics:
    instances: int
    scheduled: int
    apps: int
    writes: int


class InstanceTracker:
    """All instances of all apps; see the module docstring."""

    def __init__(
        self,
        state: StateStore,
        events: EventBus,
        *,
        instances: Iterable[Instance] = (),
        apps: Iterable[AppDefinition] = (),
    ) -> None:
        self.state = state
        self.events = events
        self._by_id: dict[InstanceId, Instance] = {}
        self._by_app: dict[PathId, dict[InstanceId, Instance]] = {}
        self._counts: dict[PathId, _Counter] = {}
        self._feeds: list[InstanceFeed] = []
        #: Per app, its instances waiting for a launch, oldest first.
        self._scheduled: dict[PathId, dict[InstanceId, Instance]] = {}
        self._scheduled_count = 0
        #: Per app, the change number of its last instance change (absent: no instances).
        self._generations: dict[PathId, int] = {}
        self._change_count = 0
        self._apps: dict[tuple[PathId, Timestamp | None], AppDefinition] = {}
        self._lock = trio.Lock()
        self._changed = trio.Event()
        self._writes = 0
        #: Called after instances became Scheduled (the launch queue revives offers).
        self.on_scheduled: Callable[[], None] = lambda: None
        #: Kills the tasks of decommissioned instances (set by the scheduler).
        self.on_decommissioned: Callable[[Sequence[Instance]], Awaitable[None]] | None = None
        for app in apps:
            self.remember_app(app)
        for instance in instances:
            self._put(instance)

    @classmethod
    async def load(cls, state: StateStore, events: EventBus) -> InstanceTracker:
        """The tracker over the stored instances, with the app versions they run."""
        instances = await state.instances.all()
        root = await state.root_group()
        apps = list(root.transitive_apps()) if root is not None else []
        known = {(a.id, a.version) for a in apps}
        missing = {
            (i.app_id, i.run_spec_version)
            for i in instances
            if i.run_spec_version is not None and (i.app_id, i.run_spec_version) not in known
        }
        if missing:
            found = await state.apps.get_versions([(a, v) for a, v in missing if v is not None])
            apps.extend(found.values())
        return cls(state, events, instances=instances, apps=apps)

    # -- the deployment boundary -------------------------------------------------------

    async def schedule(self, app: AppDefinition, count: int) -> list[Instance]:
        """Create ``count`` new Scheduled instances (goal Running) of ``app``'s version.

        They are stored before this returns; the launch queue picks them up. The app
        must carry its version (stamped when stored).
        """
        if count <= 0:
            return []
        self.remember_app(app)
        now = Timestamp.now()
        new = tuple(
            Instance(
                instance_id=InstanceId.new(app.id),
                goal=Goal.RUNNING,
                condition=Condition.SCHEDULED,
                run_spec_version=app.version,
                role=app.role,
                since=now,
            )
            for _ in range(count)
        )
        await self.apply(lambda: Changes(put=new))
        return list(new)

    async def decommission(self, instance_ids: Iterable[InstanceId]) -> None:
        """Set goal Decommissioned (stored), then kill their tasks with the app's grace period.

        Instances that never launched, or whose task is already terminal, are
        expunged at once; the others once Mesos reports their task terminal.
        """
        ids = list(instance_ids)

        def compute() -> Changes:
            put: list[Instance] = []
            expunge: list[InstanceId] = []
            for instance_id in ids:
                instance = self._by_id.get(instance_id)
                if instance is None:
                    continue
                if instance.condition is Condition.SCHEDULED or instance.condition.is_terminal:
                    expunge.append(instance_id)
                elif instance.goal is not Goal.DECOMMISSIONED:
                    put.append(attrs.evolve(instance, goal=Goal.DECOMMISSIONED))
            return Changes(put=tuple(put), expunge=tuple(expunge))

        changes = await self.apply(compute)
        if changes.put and self.on_decommissioned is not None:
            await self.on_decommissioned(changes.put)

    def instances_of(self, app_id: PathId) -> list[Instance]:
        """The current instances of one app (any goal and condition)."""
        return list(self._by_app.get(app_id, {}).values())

    def counts_of(self, app_id: PathId) -> InstanceCounts:
        """What :meth:`InstanceCounts.of` ``instances_of(app_id)`` gives, without a scan."""
        counter = self._counts.get(app_id)
        return counter.snapshot() if counter is not None else InstanceCounts()

    def all_instances(self) -> list[Instance]:
        return list(self._by_id.values())

    def generation(self, app_id: PathId) -> int:
        """A number that changes whenever :meth:`instances_of` ``app_id`` would change.

        Numbers are never reused while the tracker lives (0 means "no instances"), so
        a reader may cache what it derives from an app's instances under this number.
        """
        return self._generations.get(app_id, 0)

    async def wait_changed(self) -> None:
        """Return after the next change of any instance (stored and applied)."""
        await self._changed.wait()

    @contextmanager
    def follow(self) -> Iterator[InstanceFeed]:
        """A feed of the changes from now on (until the block ends)."""
        feed = InstanceFeed()
        self._feeds.append(feed)
        try:
            yield feed
        finally:
            self._feeds.remove(feed)

    # -- for the scheduler -----------------------------------------------------------

    def get(self, instance_id: InstanceId) -> Instance | None:
        return self._by_id.get(instance_id)

    def app_ids(self) -> list[PathId]:
        return list(self._by_app)

    def scheduled(self) -> list[Instance]:
        """Instances waiting for a launch (condition Scheduled, goal Running), app by
        app, oldest first."""
        return [i for of_app in self._scheduled.values() for i in of_app.values()]

    def scheduled_by_app(self) -> Mapping[PathId, Mapping[InstanceId, Instance]]:
        """:meth:`scheduled` per app, without a copy: read it before the next ``await``
        (a launch round looks at the first few of thousands)."""
        return self._scheduled

    def scheduled_count(self) -> int:
        return self._scheduled_count

    def remember_app(self, app: AppDefinition) -> None:
        """Keep an app version so its instances can be launched and described."""
        key = (app.id, app.version)
        known = self._apps.get(key)
        if known is app:
            return
        self._apps[key] = app
        if known is None or known != app:
            for feed in self._feeds:
                feed.add_app(app.id)

    def latest_app(self, app_id: PathId) -> AppDefinition | None:
        """The newest known version of an app (the one whose ``instances`` counts)."""
        versions = [a for (aid, v), a in self._apps.items() if aid == app_id and v is not None]
        return max(versions, key=lambda a: a.version or Timestamp(0), default=None)

    def app_of(self, instance: Instance) -> AppDefinition | None:
        """The app version ``instance`` runs (None if unknown, e.g. the app was deleted)."""
        return self._apps.get((instance.app_id, instance.run_spec_version))

    async def apply(self, compute: Callable[[], Changes]) -> Changes:
        """Compute changes from the current view (under the lock), store, then apply them."""
        async with self._lock:
            changes = compute()
            if not changes:
                return changes
            # One transaction for all of it: a batch of status updates is stored whole
            # (or not at all) before any of them is acknowledged.
            await self.state.instances.change(
                put=changes.put, delete=changes.expunge, also=changes.also
            )
            self._writes += 1
            scheduled = False
            for instance in changes.put:
                before = self._by_id.get(instance.instance_id)
                self._put(instance)
                if before is None or before.condition is not instance.condition:
                    self.events.publish(instance_changed_event(instance))
                    scheduled = scheduled or instance.condition is Condition.SCHEDULED
            for instance in changes.final:
                before = self._by_id.get(instance.instance_id)
                if before is None or before.condition is not instance.condition:
                    self.events.publish(instance_changed_event(instance))
            for instance_id in changes.expunge:
                self._drop(instance_id)
            self._changed.set()
            self._changed = trio.Event()
        if scheduled:
            self.on_scheduled()
        return changes

    def _put(self, instance: Instance) -> None:
        iid = instance.instance_id
        app_id = instance.app_id
        before = self._by_id.get(iid)
        counter = self._counts.get(app_id)
        if counter is None:
            counter = self._counts[app_id] = _Counter()
        if before is not None:
            counter.add(before, -1)
        counter.add(instance, 1)
        for feed in self._feeds:
            feed.add_instance(app_id, iid)
        self._by_id[iid] = instance
        self._by_app.setdefault(app_id, {})[iid] = instance
        self._change_count += 1
        self._generations[app_id] = self._change_count
        if instance.condition is Condition.SCHEDULED and instance.goal is Goal.RUNNING:
            of_app = self._scheduled.setdefault(app_id, {})
            self._scheduled_count += iid not in of_app
            of_app[iid] = instance
        else:
            self._unschedule(app_id, iid)

    def _drop(self, instance_id: InstanceId) -> None:
        self._by_id.pop(instance_id, None)
        app_id = instance_id.run_spec_id
        self._unschedule(app_id, instance_id)
        of_app = self._by_app.get(app_id)
        if of_app is not None and (before := of_app.pop(instance_id, None)) is not None:
            self._counts[app_id].add(before, -1)
            for feed in self._feeds:
                feed.add_instance(app_id, instance_id)
            self._change_count += 1
            self._generations[app_id] = self._change_count
            if not of_app:
                del self._by_app[app_id]
                del self._generations[app_id]
                del self._counts[app_id]

    def _unschedule(self, app_id: PathId, instance_id: InstanceId) -> None:
        of_app = self._scheduled.get(app_id)
        if of_app is not None and of_app.pop(instance_id, None) is not None:
            self._scheduled_count -= 1
            if not of_app:
                del self._scheduled[app_id]

    def statistics(self) -> TrackerStatistics:
        return TrackerStatistics(
            instances=len(self._by_id),
            scheduled=self._scheduled_count,
            apps=len(self._by_app),
            writes=self._writes,
        )
