"""The agent side: real processes in real cgroup v1 directories (root only)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio

from marathon_core.contracts.containerizers import Launch
from marathon_runtime_mesos.containerizer import CgroupTask, MesosContainerizer

from .conftest import needs_cgroups  # type: ignore[import-not-found]

pytestmark = [needs_cgroups, pytest.mark.processes]


def launch_of(tmp_path: Path, command: str, **resources: float) -> Launch:
    return Launch(
        task_id="t",
        command=command,
        arguments=(),
        shell=True,
        environment={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        sandbox=tmp_path / "sandbox",
        resources=resources or {"cpus": 0.5, "mem": 64.0},
        container={"type": "MESOS", "mesos": {}},
    )


def read(path: Path) -> str:
    return path.read_text().strip()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return False


@pytest.fixture
async def started(cgroup_root: str) -> AsyncIterator[list[CgroupTask]]:
    """Tasks a test starts; any still running at the end is killed (the cgroup_root
    fixture then removes whatever is left)."""
    tasks: list[CgroupTask] = []
    try:
        yield tasks
    finally:
        for task in tasks:
            with trio.move_on_after(10):
                await task.kill(grace_period=0)
                await task.wait()


async def launch(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path, command: str, **res: float
) -> CgroupTask:
    task = await MesosContainerizer(cgroup_root).launch(launch_of(tmp_path, command, **res))
    started.append(task)
    return task


async def test_limits_are_written_and_the_task_is_inside(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path
) -> None:
    task = await launch(cgroup_root, started, tmp_path, "exec sleep 30", cpus=0.5, mem=64.0)
    cg = task.cgroups.paths
    assert read(cg["memory"] / "memory.limit_in_bytes") == str(64 * 1024 * 1024)
    memsw = cg["memory"] / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        assert read(memsw) == str(64 * 1024 * 1024)
    assert read(cg["memory"] / "memory.swappiness") == "0"
    assert read(cg["cpu"] / "cpu.shares") == "512"
    assert read(cg["cpu"] / "cpu.cfs_period_us") == "100000"
    assert read(cg["cpu"] / "cpu.cfs_quota_us") == "50000"
    for controller in ("memory", "cpu", "cpuacct", "pids", "freezer"):
        assert read(cg[controller] / "cgroup.procs").split() == [str(task.pid)], controller
    await task.kill(grace_period=1.0)
    termination = await task.wait()
    assert termination.signal == signal.SIGTERM
    assert termination.message == "Command terminated with signal Terminated"
    assert not any(p.exists() for p in cg.values())


async def test_a_task_past_its_memory_is_a_memory_limitation(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path
) -> None:
    hog = f"{sys.executable} -c 'b=[]\nwhile True: b.append(bytearray(1<<20))'"
    task = await launch(cgroup_root, started, tmp_path, hog, cpus=0.5, mem=32.0)
    with trio.fail_after(20):
        termination = await task.wait()
    assert termination.oom_killed
    assert termination.exit_code is None
    assert termination.message.startswith("Memory limit exceeded: Requested: 32MB Maximum Used: ")
    assert "MEMORY STATISTICS: \n" in termination.message
    assert not task.cgroups.exists()


async def test_a_forking_task_is_killed_whole(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path
) -> None:
    # Children ignore SIGTERM and one leaves the process group: only the cgroup holds them.
    script = 'trap "" TERM; sleep 300 & sleep 300 & setsid sleep 300 & (sleep 300 & wait) & wait'
    task = await launch(cgroup_root, started, tmp_path, script)
    with trio.fail_after(5):
        while len(task.cgroups.pids()) < 6:
            await trio.sleep(0.05)
    pids = task.cgroups.pids()
    assert task.pid in pids
    await task.kill(grace_period=0.3)
    with trio.fail_after(10):
        termination = await task.wait()
    assert termination.signal == signal.SIGKILL
    assert [pid for pid in pids if alive(pid)] == []
    assert not any(p.exists() for p in task.cgroups.paths.values())


async def test_a_task_is_recovered_by_container_id(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path
) -> None:
    first = await launch(cgroup_root, started, tmp_path, "exec sleep 30")
    sandbox = tmp_path / "sandbox"
    containerizer = MesosContainerizer(cgroup_root)
    assert await containerizer.recover("no-such-container", sandbox) is None
    again = await containerizer.recover(first.container_id, sandbox)
    assert again is not None
    started.append(again)
    assert again.pid == first.pid
    await again.kill(grace_period=1.0)
    with trio.fail_after(10):
        await again.wait()
    assert not again.cgroups.exists()
    await first.wait()  # reap our child


async def test_a_task_runs_as_its_user_inside_its_cgroups(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path
) -> None:
    """The child enters its cgroups as root, then drops to the user before it execs."""
    spec = attrs.evolve(launch_of(tmp_path, "id -u > who; exec sleep 30"), user="nobody")
    task = await MesosContainerizer(cgroup_root).launch(spec)
    started.append(task)
    with trio.fail_after(5):
        while not (spec.sandbox / "who").exists() or not read(spec.sandbox / "who"):
            await trio.sleep(0.02)
    assert read(spec.sandbox / "who") == "65534"
    assert os.stat(f"/proc/{task.pid}").st_uid == 65534
    procs = task.cgroups.paths["memory"] / "cgroup.procs"
    with trio.fail_after(5):  # `id` may still be exiting when its output is there
        while read(procs).split() != [str(task.pid)]:
            await trio.sleep(0.02)
    assert (spec.sandbox / "stdout").stat().st_uid == 65534


async def test_orphans_of_this_agent_are_destroyed_and_no_others(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path
) -> None:
    async def start(agent: str, name: str) -> CgroupTask:
        sandbox = tmp_path / agent / name
        launch = attrs.evolve(
            launch_of(tmp_path, "exec sleep 300"),
            sandbox=sandbox,
            environment={"PATH": os.environ.get("PATH", "/bin"), "MESOS_SANDBOX": str(sandbox)},
        )
        task = await MesosContainerizer(cgroup_root).launch(launch)
        started.append(task)
        return task

    kept, orphan = await start("mine", "a"), await start("mine", "b")
    foreign = await start("other", "c")
    mine = MesosContainerizer(cgroup_root, work_dir=tmp_path / "mine")
    await mine.remove_orphans({kept.container_id})
    assert kept.cgroups.exists() and foreign.cgroups.exists()
    assert not orphan.cgroups.exists()
    with trio.fail_after(10):
        assert (await orphan.wait()).signal == signal.SIGKILL


async def test_a_command_run_in_the_task_runs_inside_its_cgroups(
    cgroup_root: str, started: list[CgroupTask], tmp_path: Path
) -> None:
    """A COMMAND health check of a MESOS task counts against the task's cgroups."""
    task = await launch(cgroup_root, started, tmp_path, "exec sleep 30")
    procs = task.cgroups.paths["memory"] / "cgroup.procs"
    check = launch_of(tmp_path, f"cat /proc/self/cgroup >&2; test $(wc -l < {procs}) -ge 2")
    termination = await task.exec(check)
    assert termination.exit_code == 0  # it was in there beside the task
    assert task.container_id in (tmp_path / "sandbox" / "stderr").read_text()
    assert read(procs).split() == [str(task.pid)]  # and is gone again
