"""Child process of the crash test: a burst of SQLite writes, each reported after commit.

Usage: ``python state_crash_child.py DB_PATH``.  Resumes after the last
committed burst found in the store, so the parent can kill and restart it.
Each line on stdout (flushed) names a write whose commit call has returned:

* ``raw <i>``: keys ``burst/<i>/a`` and ``burst/<i>/b`` created and
  ``counter`` set to ``i``, in one transaction;
* ``root <i>``: a root group version ``i`` with its changed app, a deployment
  ``d<i>`` and instances of that app, stored through the StateStore.
"""

from __future__ import annotations

import sys

import trio

from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance, InstanceId
from marathon_core.state.sqlite import SqliteStorage
from marathon_core.state.storage import Create, Update
from marathon_core.state.store import StateStore

APPS = 5


def payload(i: int, part: str) -> bytes:
    """Deterministic content; every 7th burst is large so kills land inside commits."""
    size = 300_000 if i % 7 == 0 else 200 + i % 50
    unit = f"{part}{i}:".encode()
    return (unit * (size // len(unit) + 1))[:size]


def app(k: int, i: int) -> AppDefinition:
    return AppDefinition(id=PathId.parse(f"/crash/app-{k}"), cmd=f"v{i}", version=Timestamp(i + 1))


async def main(path: str) -> None:
    storage = await SqliteStorage.open(path)
    state = await StateStore.open(storage)
    counter = await storage.get("counter")
    i = int(counter.value) + 1 if counter is not None else 0
    counter_version = counter.version if counter is not None else None
    root = await state.root_group()
    apps = {a.id: a for a in root.transitive_apps()} if root is not None else {}
    out = sys.stdout
    while True:
        ops = [
            Create(f"burst/{i:06d}/a", payload(i, "a")),
            Create(f"burst/{i:06d}/b", payload(i, "b")),
        ]
        if counter_version is None:
            ops.append(Create("counter", str(i).encode()))
        else:
            ops.append(Update("counter", str(i).encode(), counter_version))
        *_, counter_version = await storage.commit(ops)
        out.write(f"raw {i}\n")
        out.flush()
        if i % 3 == 0:
            changed = app(i % APPS, i)
            apps[changed.id] = changed
            new_root = Group(
                PathId.root(),
                groups=(
                    Group(
                        PathId.parse("/crash"),
                        apps=tuple(sorted(apps.values(), key=lambda a: a.id)),
                        version=Timestamp(i + 1),
                    ),
                ),
                version=Timestamp(i + 1),
            )
            await state.store_root_and_deployment(
                new_root, Deployment(id=f"d{i}", version=Timestamp(i + 1)), apps_changed=[changed]
            )
            await state.instances.put_many(
                Instance(
                    InstanceId(changed.id, f"{i:08d}-0000-0000-0000-{n:012d}"),
                    run_spec_version=changed.version,
                )
                for n in range(20)
            )
            out.write(f"root {i}\n")
            out.flush()
        i += 1


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
