"""Groups: the tree of apps under the root, with dependencies between its nodes."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from operator import attrgetter

import attrs

from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp

__all__ = ["AppChanges", "Group", "app_changes", "transitive_dependencies"]

_ID_PATH = attrgetter("id.path")

#: Groups with this many apps get an index of app positions (see Group._app_position).
_INDEXED_FROM = 64
#: Indexes kept: a change makes a few app tuples, and the roots before and after it
#: are searched again and again.
_INDEXES_KEPT = 8

#: App path -> position, for the last few large app tuples searched, by tuple identity
#: (groups copied by a change share their apps tuple).
#:
#: One index may serve several tuples: replacing an app in place keeps every position,
#: and appending to the tuple whose index covers exactly its apps extends that index
#: in place (the shorter tuples it served ignore positions past their end). So a change
#: to a group of 10k apps does not copy or rebuild its index.
_indexes: dict[int, tuple[tuple[AppDefinition, ...], dict[tuple[str, ...], int]]] = {}


def _app_positions(apps: tuple[AppDefinition, ...]) -> dict[tuple[str, ...], int]:
    hit = _indexes.get(id(apps))
    if hit is not None and hit[0] is apps:
        return hit[1]
    index = dict(zip(map(_ID_PATH, apps), range(len(apps)), strict=True))
    _keep_index(apps, index)
    return index


def _known_positions(apps: tuple[AppDefinition, ...]) -> dict[tuple[str, ...], int] | None:
    hit = _indexes.get(id(apps))
    return hit[1] if hit is not None and hit[0] is apps else None


def _keep_index(apps: tuple[AppDefinition, ...], index: dict[tuple[str, ...], int]) -> None:
    _indexes.pop(id(apps), None)
    _indexes[id(apps)] = (apps, index)
    while len(_indexes) > _INDEXES_KEPT:
        del _indexes[next(iter(_indexes))]


@attrs.frozen
class Group:
    """A node of the app tree. Ids of apps and subgroups are absolute and below ``id``.

    ``enforce_role`` is stored but never sent to clients (marathon-python 0.13 rejects it).
    """

    id: PathId
    apps: tuple[AppDefinition, ...] = ()
    groups: tuple[Group, ...] = ()
    dependencies: tuple[PathId, ...] = ()
    version: Timestamp | None = None
    enforce_role: bool = False

    @classmethod
    def empty_root(cls, version: Timestamp | None = None) -> Group:
        return cls(PathId.root(), version=version)

    def transitive_apps(self) -> Iterator[AppDefinition]:
        """Every app of this group and of all its subgroups, depth first."""
        yield from self.apps
        for g in self.groups:
            yield from g.transitive_apps()

    def transitive_groups(self) -> Iterator[Group]:
        """This group and every group below it."""
        yield self
        for g in self.groups:
            yield from g.transitive_groups()

    def app_index(self) -> dict[PathId, AppDefinition]:
        """All transitive apps by id, for repeated look-ups."""
        return {a.id: a for a in self.transitive_apps()}

    def find_group(self, gid: PathId) -> Group | None:
        """The group with id ``gid`` at or below this one, walking only the matching branch."""
        if gid == self.id:
            return self
        for g in self.groups:
            if g.id.includes(gid):
                return g.find_group(gid)
        return None

    def find_app(self, app_id: PathId) -> AppDefinition | None:
        parent = self.find_group(app_id.parent)
        if parent is None:
            return None
        i = parent._app_position(app_id)
        return None if i is None else parent.apps[i]

    def _app_position(self, app_id: PathId) -> int | None:
        """Where ``app_id`` is in ``apps``.

        Why an index: a group of 10k apps is searched several times per change to it
        (the change, its plan, its events), and comparing 10k ids costs milliseconds
        each time. Large groups get an index by path, built once per group object.
        """
        apps = self.apps
        if len(apps) < _INDEXED_FROM:
            for i, app in enumerate(apps):
                if app.id == app_id:
                    return i
            return None
        found = _app_positions(apps).get(app_id.path)
        if found is None or found >= len(apps):  # past the end: a longer tuple's app
            return None
        there = apps[found].id
        if there == app_id:
            return found
        if there.path != app_id.path:  # another tuple's app (see _indexes)
            return None
        # The path is shared by a relative and an absolute id (never made by the API).
        return next((i for i, app in enumerate(apps) if app.id == app_id), None)

    def app(self, app_id: PathId) -> AppDefinition | None:
        """Alias of :meth:`find_app`."""
        return self.find_app(app_id)

    def dependency_edges(self) -> dict[PathId, set[PathId]]:
        """App id -> ids of the apps it depends on, with group dependencies expanded.

        A dependency on a group means "on all of its transitive apps"; a group's own
        dependencies apply to each of its apps. Ids that name nothing are ignored, as
        Marathon ignores them.
        """
        apps = self.app_index()
        groups = {g.id: g for g in self.transitive_groups()}

        def expand(target: PathId) -> set[PathId]:
            if target in apps:
                return {target}
            g = groups.get(target)
            if g is not None:
                return {a.id for a in g.transitive_apps()}
            return set()

        edges: dict[PathId, set[PathId]] = {aid: set() for aid in apps}
        for g in groups.values():
            group_deps: set[PathId] = set()
            for d in g.dependencies:
                group_deps |= expand(d)
            if group_deps:
                for a in g.transitive_apps():
                    edges[a.id] |= group_deps - {a.id}
        for aid, app in apps.items():
            for d in app.dependencies:
                edges[aid] |= expand(d)
        return edges

    def has_cycle(self) -> bool:
        """True when the dependency graph of the transitive apps has a cycle."""
        edges = self.dependency_edges()
        white, grey, black = 0, 1, 2
        color = dict.fromkeys(edges, white)
        for start in edges:
            if color[start] != white:
                continue
            color[start] = grey
            stack = [(start, iter(edges[start]))]
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    color[node] = black
                    stack.pop()
                    continue
                c = color.get(nxt, black)
                if c == grey:
                    return True
                if c == white:
                    color[nxt] = grey
                    stack.append((nxt, iter(edges[nxt])))
        return False

    def update_app(self, app: AppDefinition) -> Group:
        """A copy with ``app`` put in place (replacing one with the same id), creating
        intermediate groups like ``mkdir -p``."""
        return self._put(app, app.id.parent)

    def _put(self, app: AppDefinition, target: PathId) -> Group:
        if target == self.id:
            i = self._app_position(app.id)
            index = _known_positions(self.apps)
            if i is not None:  # replaced in place: every position stays
                apps = (*self.apps[:i], app, *self.apps[i + 1 :])
                if index is not None:
                    _keep_index(apps, index)
                return attrs.evolve(self, apps=apps)
            apps = (*self.apps, app)
            if index is not None:
                if len(index) != len(self.apps):  # it serves a longer tuple too: copy
                    index = {p: n for p, n in index.items() if n < len(self.apps)}
                if app.id.path not in index:  # else a relative twin: build anew when asked
                    index[app.id.path] = len(self.apps)
                    _keep_index(apps, index)
            return attrs.evolve(self, apps=apps)
        depth = len(self.id.path) + 1
        child_id = PathId(target.path[:depth], True)
        groups = list(self.groups)
        for i, g in enumerate(groups):
            if g.id == child_id:
                groups[i] = g._put(app, target)
                break
        else:
            groups.append(Group(child_id, version=self.version)._put(app, target))
        return attrs.evolve(self, groups=tuple(groups))

    def put_group(self, group: Group) -> Group:
        """A copy with ``group`` in place (replacing the one with its id, subtree and all),
        creating intermediate groups like ``mkdir -p``."""
        if group.id == self.id:
            return group
        depth = len(self.id.path) + 1
        child_id = PathId(group.id.path[:depth], True)
        groups = list(self.groups)
        for i, g in enumerate(groups):
            if g.id == child_id:
                groups[i] = g.put_group(group)
                break
        else:
            groups.append(Group(child_id, version=self.version).put_group(group))
        return attrs.evolve(self, groups=tuple(groups))

    def remove_group(self, gid: PathId) -> Group:
        """A copy without the group ``gid`` and everything below it (the root is emptied)."""
        if gid == self.id:
            return attrs.evolve(self, apps=(), groups=(), dependencies=())
        groups = tuple(
            g.remove_group(gid) if g.id.includes(gid) else g for g in self.groups if g.id != gid
        )
        return attrs.evolve(self, groups=groups)

    def remove_app(self, app_id: PathId) -> Group:
        """A copy without the app ``app_id`` (unchanged when it does not exist)."""
        if app_id.parent == self.id:
            i = self._app_position(app_id)
            if i is None:
                return self
            return attrs.evolve(self, apps=self.apps[:i] + self.apps[i + 1 :])
        groups = tuple(g.remove_app(app_id) if g.id.includes(app_id) else g for g in self.groups)
        return attrs.evolve(self, groups=groups)


def transitive_dependencies(
    app_id: PathId, edges: Mapping[PathId, Collection[PathId]]
) -> set[PathId]:
    """The apps ``app_id`` depends on, directly or not, by ``edges`` (from
    :meth:`Group.dependency_edges`, computed once for many apps); a cycle ends the walk."""
    seen: set[PathId] = set()
    pending = list(edges.get(app_id, ()))
    while pending:
        dep = pending.pop()
        if dep not in seen:
            seen.add(dep)
            pending.extend(edges.get(dep, ()))
    return seen


@attrs.frozen
class AppChanges:
    """How the apps of two group trees differ (see :func:`app_changes`)."""

    #: Apps of ``after`` that ``before`` lacks or holds as another, unequal app, by id, in
    #: the order of ``after``'s :meth:`Group.transitive_apps`.
    changed: dict[PathId, AppDefinition]
    #: The ``before`` version of each changed app that ``before`` has.
    previous: dict[PathId, AppDefinition]
    #: Apps of ``before`` that ``after`` lacks, by id.
    removed: dict[PathId, AppDefinition]
    #: Ids of the groups of ``after`` that ``before`` lacks.
    new_groups: tuple[PathId, ...]


def app_changes(before: Group, after: Group) -> AppChanges:
    """What differs between the apps of ``before`` and ``after`` (an app equal to the one
    it replaces is no change).

    The same result as comparing the two :meth:`Group.app_index` maps, but without
    entering subgroups that both trees share: the tree is only changed by path
    copying (:meth:`Group.update_app`, :meth:`Group.put_group`, ...), which keeps every
    untouched subgroup as the same object, so a change costs the groups on its path
    and the apps directly in them instead of every app.
    """
    arrived: dict[PathId, AppDefinition] = {}
    left: dict[PathId, AppDefinition] = {}
    new_groups: list[PathId] = []

    def walk(old: Group | None, new: Group | None) -> None:
        if old is new:
            return
        if new is None:
            assert old is not None
            left.update((a.id, a) for a in old.transitive_apps())
            return
        fresh, stale = _unshared(old.apps if old is not None else (), new.apps)
        old_apps = {a.id: a for a in stale}
        for app in fresh:
            arrived[app.id] = app
            was = old_apps.pop(app.id, None)
            if was is not None:
                left[app.id] = was
        left.update(old_apps)
        old_groups = {g.id: g for g in old.groups} if old is not None else {}
        for group in new.groups:
            was_group = old_groups.pop(group.id, None)
            if was_group is None:
                new_groups.append(group.id)
            walk(was_group, group)
        for gone in old_groups.values():
            walk(gone, None)

    walk(before, after)
    changed: dict[PathId, AppDefinition] = {}
    previous: dict[PathId, AppDefinition] = {}
    for app_id, app in arrived.items():
        was = left.pop(app_id, None)
        if was == app:  # moved between groups, unchanged
            continue
        changed[app_id] = app
        if was is not None:
            previous[app_id] = was
    return AppChanges(changed, previous, left, tuple(new_groups))


def _unshared(
    before: tuple[AppDefinition, ...], after: tuple[AppDefinition, ...]
) -> tuple[list[AppDefinition], list[AppDefinition]]:
    """The apps of ``after`` that ``before`` lacks, and those of ``before`` that
    ``after`` lacks (an equal app counts as the same).

    Why by position: a group change appends, replaces (in place) or removes an app, so
    walking both in step, skipping one app of ``before`` at a time, pairs up the shared
    apps; runs of shared apps are skipped by comparing slices (identity first, in C),
    since hashing or even visiting 10k apps in Python on each change of a group that
    large cost more than the rest of the change.
    """
    fresh: list[AppDefinition] = []
    stale: list[AppDefinition] = []
    i = j = 0
    while i < len(after):
        run = _shared_run(before, j, after, i)
        if run:
            i, j = i + run, j + run
            continue
        app = after[i]
        if j + 1 < len(before) and before[j + 1] is app:
            stale.append(before[j])
            j += 1
            continue
        fresh.append(app)
        i += 1
    stale.extend(before[j:])
    if fresh and stale:  # out of step: an app may sit elsewhere in ``after``
        moved = {id(a) for a in fresh} & {id(a) for a in stale}
        fresh = [a for a in fresh if id(a) not in moved]
        stale = [a for a in stale if id(a) not in moved]
    return fresh, stale


#: Apps compared at once by :func:`_shared_run` at first, and at most.
_RUN_FIRST, _RUN_MAX = 32, 4096


def _shared_run(
    before: tuple[AppDefinition, ...], j: int, after: tuple[AppDefinition, ...], i: int
) -> int:
    """How many apps from ``after[i]`` on equal those from ``before[j]`` on: slices
    compared in growing steps, shrinking again to find where they differ."""
    run, step = 0, _RUN_FIRST
    while step:
        size = min(step, len(after) - i - run, len(before) - j - run)
        if size <= 0:
            break
        if after[i + run : i + run + size] == before[j + run : j + run + size]:
            run += size
            step = min(step * 2, _RUN_MAX)
        else:
            step = min(step, size) // 2
    return run
