"""Reference chunks (state/refchunks.py): cut the same whatever the history, and a
change to one app of a large group makes new chunks only around it."""

from __future__ import annotations

import random

from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.refchunks import CHUNK_MAX, Chunk, chunk_apps, split_refs


def _app(n: int, version: int = 0) -> AppDefinition:
    return AppDefinition(
        id=PathId.parse(f"/big/a{n}"), cmd="x", version=Timestamp(1_700_000_000_000 + version)
    )


def _names(apps: tuple[AppDefinition, ...]) -> list[str]:
    return [n for _, n in split_refs([(str(a.id), str(a.version)) for a in apps])]


def test_chunks_are_cut_as_from_scratch_and_changes_make_few_new_ones() -> None:
    rng = random.Random(5)
    apps = tuple(_app(n) for n in range(1500))
    chunks = chunk_apps(apps, ())
    assert [c.name for c in chunks] == _names(apps)
    assert max(len(c.apps) for c in chunks) <= CHUNK_MAX
    assert len(chunks) > 10
    fresh = 1500
    for step in range(300):
        move = rng.random()
        i = rng.randrange(len(apps))
        if move < 0.3:  # one more app
            apps, fresh = (*apps, _app(fresh)), fresh + 1
        elif move < 0.6:  # an app replaced in place
            apps = (
                *apps[:i],
                _app(int(str(apps[i].id).rpartition("a")[2]), step + 1),
                *apps[i + 1 :],
            )
        elif move < 0.8:
            apps = apps[:i] + apps[i + 1 :]
        elif move < 0.95:  # inserted in the middle (a group replaced by a copy)
            apps, fresh = (*apps[:i], _app(fresh), *apps[i:]), fresh + 1
        else:
            shuffled = list(apps)
            rng.shuffle(shuffled)
            apps = tuple(shuffled)
        before: dict[str, Chunk] = {c.name: c for c in chunks}
        chunks = chunk_apps(apps, chunks)
        assert [c.name for c in chunks] == _names(apps), step
        assert b"".join(c.value for c in chunks).count(b"/big/") == len(apps)
        made = [c for c in chunks if before.get(c.name) is not c]  # encoded anew
        if move < 0.95:
            assert len(made) <= 3, (step, move)
