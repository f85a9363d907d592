"""Decoded root groups a state store already holds, by version.

Why: a deployment needs the root it started from and the root it goes to. Reading
one from storage means decoding every app it refers to (measured: 84% of a
deployment's time with 3,500 apps, on the event loop). Root versions are immutable
once stored, and consecutive roots share every subtree that did not change, so the
store keeps the roots it wrote or read as values: a deployment then reads nothing,
and a root it must still read decodes only the apps no kept root holds.

What is kept mirrors storage: a root enters after its commit succeeded (or after it
was read), the oldest leave when more than ``max_versions`` are kept, and the store
checks that a version is still stored before answering from here (another leader
may have pruned it).
"""

from __future__ import annotations

from marathon_core.model.app import AppDefinition
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp

__all__ = ["AppKey", "KnownRoots"]

#: An app version as the root record refers to it.
AppKey = tuple[PathId, Timestamp]


class KnownRoots:
    """Up to ``limit`` decoded roots by version, and the app versions they hold."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._roots: dict[Timestamp, Group] = {}
        #: (app id, version) -> app, over the newest root; built on first use.
        self._index: tuple[Group, dict[AppKey, AppDefinition]] | None = None

    def get(self, version: Timestamp) -> Group | None:
        return self._roots.get(version)

    def remember(self, root: Group) -> None:
        """Keep ``root`` (stored, or read) under its version, dropping the oldest beyond
        the limit."""
        assert root.version is not None
        self._roots[root.version] = root
        if len(self._roots) > self._limit:
            for version in sorted(self._roots)[: len(self._roots) - self._limit]:
                del self._roots[version]

    def forget(self, version: Timestamp) -> None:
        """``version`` is no longer stored."""
        self._roots.pop(version, None)

    def app_index(self) -> dict[AppKey, AppDefinition]:
        """The apps of the newest kept root by (id, version): what reading another root
        need not decode again (older roots mostly share them)."""
        if not self._roots:
            return {}
        newest = self._roots[max(self._roots)]
        if self._index is None or self._index[0] is not newest:
            apps = {(a.id, _version(a)): a for a in newest.transitive_apps()}
            self._index = (newest, apps)
        return self._index[1]


def _version(app: AppDefinition) -> Timestamp:
    assert app.version is not None, "stored apps have versions"
    return app.version
