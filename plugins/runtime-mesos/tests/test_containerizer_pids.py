"""Which PIDs the containerizer signals besides the cgroup's own (no cgroups needed).

Once ``trio.Process.wait()`` has reaped the main process its PID may belong to an
unrelated process: it must not be signalled any more (we run as root).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterable
from typing import Any, cast

import pytest
import trio

from marathon_runtime_mesos.containerizer import CgroupTask

pytestmark = pytest.mark.processes


class FakeCgroups:
    container_id = "c"

    def __init__(self) -> None:
        self.signalled: list[tuple[int, list[int]]] = []

    def freeze(self, state: str) -> None:
        pass

    def frozen(self) -> bool:
        return True

    def pids(self) -> list[int]:
        return []

    def signal_all(self, sig: int, also: Iterable[int] = ()) -> int:
        self.signalled.append((sig, list(also)))
        return 0


async def test_a_reaped_main_process_is_not_signalled() -> None:
    process = await trio.lowlevel.open_process([sys.executable, "-c", "pass"])
    await process.wait()  # reaped: its PID is free for anyone
    cgroups = FakeCgroups()
    task = CgroupTask(cast(Any, cgroups), process.pid, process)
    await task._destroy()
    await task.kill(grace_period=0)
    assert cgroups.signalled[:2] == [(signal.SIGKILL, []), (signal.SIGTERM, [])]
    assert all(also == [] for _, also in cgroups.signalled)


async def test_a_running_main_process_is_signalled() -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", "import time; time.sleep(30)"]
    )
    try:
        cgroups = FakeCgroups()
        task = CgroupTask(cast(Any, cgroups), process.pid, process)
        await task._destroy()
        assert cgroups.signalled == [(signal.SIGKILL, [process.pid])]
    finally:
        process.kill()
        await process.wait()
