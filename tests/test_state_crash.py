"""kill -9 in the middle of a burst of SQLite writes loses nothing that was reported committed.

A real child process (``state_crash_child.py``, own session) writes and prints
each write after its commit returns; the test SIGKILLs exactly that PID after
a random number of reports, reopens the store, and checks every reported write,
the atomicity of every transaction, ``PRAGMA integrity_check`` and the
StateStore's own invariants.  Three rounds on the same file, so the child also
resumes from a crashed store.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio

from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.sqlite import SqliteStorage
from marathon_core.state.store import StateStore

pytestmark = pytest.mark.processes

CHILD = Path(__file__).with_name("state_crash_child.py")
READ_TIMEOUT = 60.0


class Child:
    """The writer process; the test kills it and only it."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._buf = b""
        self.lines: list[str] = []

    def read_until(self, n: int) -> None:
        """Collect reported lines until ``n`` were seen (or fail if the child stops)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + READ_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while len(self.lines) < n:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError(f"child reported only {len(self.lines)} writes")
                chunk = os.read(fd, 65536)
                if not chunk:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise AssertionError(f"child exited early: {err[-2000:]}")
                self._buf += chunk
                *done, self._buf = self._buf.split(b"\n")
                self.lines.extend(d.decode() for d in done)

    def kill(self) -> None:
        """SIGKILL, then keep whatever complete lines it managed to flush."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        rest = self._buf + self.proc.stdout.read()
        *done, _partial = rest.split(b"\n")
        self.lines.extend(d.decode() for d in done)
        self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[], Child]]:
    children: list[Child] = []

    def start() -> Child:
        child = Child(tmp_path / "state.sqlite3")
        children.append(child)
        return child

    try:
        yield start
    finally:
        for c in children:
            if c.proc.poll() is None:
                os.kill(c.pid, signal.SIGKILL)
                c.proc.wait(timeout=10)
            for stream in (c.proc.stdout, c.proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()


def _payload_ok(i: int, part: str, value: bytes) -> bool:
    sys.path.insert(0, str(CHILD.parent))
    from state_crash_child import payload

    return value == payload(i, part)


async def _verify(db: Path, reported_raw: set[int], reported_root: set[int]) -> int:
    storage = await SqliteStorage.open(db)
    try:
        assert await storage.check_integrity() == []
        state = await StateStore.open(storage)
        assert await state.check_consistency() == []

        # every reported raw write is there; every burst is whole; the counter matches
        bursts = sorted(int(n) for n in await storage.children("burst"))
        assert reported_raw <= set(bursts)
        assert bursts == list(range(len(bursts))), "a burst in the middle is missing"
        for i in bursts:
            got = await storage.get_children(f"burst/{i:06d}")
            assert sorted(got) == ["a", "b"], f"burst {i} half written: {sorted(got)}"
            assert _payload_ok(i, "a", got["a"].value) and _payload_ok(i, "b", got["b"].value)
        counter = await storage.get("counter")
        assert counter is not None and int(counter.value) == bursts[-1]

        # group change + deployment: each root version has its deployment and vice versa
        root_versions = {v.millis - 1 for v in await state.root_group_versions()}
        deployments = {int(d[1:]) for d in await state.deployments.ids()}
        oldest_kept = min(root_versions) if root_versions else 0
        assert root_versions <= deployments
        assert {d for d in deployments if d >= oldest_kept} == root_versions
        for i in reported_root:
            assert i in deployments
            app_id = PathId.parse(f"/crash/app-{i % 5}")
            assert await state.apps.get_version(app_id, Timestamp(i + 1)) is not None
            mine = [
                x
                for x in await state.instances.by_app(app_id)
                if x.instance_id.uuid.startswith(f"{i:08d}")
            ]
            assert len(mine) == 20
        root = await state.root_group()
        if reported_root:
            assert root is not None and root.version is not None
            assert root.version.millis - 1 >= max(reported_root)
        return len(bursts)
    finally:
        await storage.aclose()


def test_kill_9_mid_burst_loses_no_committed_write(
    spawn: Callable[[], Child], tmp_path: Path
) -> None:
    rng = random.Random(os.getpid())
    db = tmp_path / "state.sqlite3"
    total = 0
    for _round in range(3):
        child = spawn()
        child.read_until(rng.randint(30, 120))
        time.sleep(rng.uniform(0, 0.05))  # let the kill land anywhere, also inside a commit
        child.kill()
        raw = {int(x.split()[1]) for x in child.lines if x.startswith("raw ")}
        roots = {int(x.split()[1]) for x in child.lines if x.startswith("root ")}
        assert raw, child.lines[:5]
        n = trio.run(_verify, db, raw, roots)
        assert n >= total + len(raw)  # resumed after the last commit, lost nothing
        total = n
