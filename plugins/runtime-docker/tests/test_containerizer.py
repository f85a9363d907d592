"""The Docker containerizer against a real Docker Engine (the session's own dockerd)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

from marathon_core.contracts.containerizers import Launch
from marathon_runtime_docker.containerizer import (
    CONTAINER_LABEL,
    TASK_LABEL,
    WORK_DIR_LABEL,
    DockerContainerizer,
    DockerTask,
)
from marathon_runtime_docker.testing import BUSYBOX, Dockerd

pytestmark = [pytest.mark.docker]

#: An image reference whose registry refuses at once: a pull fails without leaving loopback.
UNREACHABLE = "127.0.0.1:9/missing:1"


def launch_of(
    sandbox: Path,
    command: str | None,
    *,
    image: str = BUSYBOX,
    shell: bool = True,
    arguments: tuple[str, ...] = (),
    docker: Mapping[str, Any] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    resources: Mapping[str, float] | None = None,
    environment: Mapping[str, str] | None = None,
) -> Launch:
    return Launch(
        task_id="app.task-1",
        command=command,
        arguments=arguments,
        shell=shell,
        environment={
            "MESOS_AGENT_ID": "agent-1",
            "PORT0": "31001",
            "PORTS": "31001",
            **(environment or {}),
        },
        sandbox=sandbox,
        resources=resources or {"cpus": 0.5, "mem": 64.0},
        container={
            "type": "DOCKER",
            "docker": {"image": image, "network": "HOST", **(docker or {})},
            "volumes": volumes or [],
        },
    )


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "agent"


@pytest.fixture
async def containerizer(dockerd: Dockerd, work_dir: Path) -> AsyncIterator[DockerContainerizer]:
    """A containerizer for one agent; its containers are gone after the test."""
    found = DockerContainerizer(dockerd.socket, work_dir=work_dir)
    try:
        yield found
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            await found.remove_orphans(())
            await found.engine.aclose()
        assert [
            c for c in dockerd.containers() if c["Labels"].get(WORK_DIR_LABEL) == str(work_dir)
        ] == []


def ours(dockerd: Dockerd, task: DockerTask) -> list[dict[str, Any]]:
    return [c for c in dockerd.containers() if c["Id"] == task.docker_id]


async def test_a_shell_command_runs_and_its_output_lands_in_the_sandbox(
    containerizer: DockerContainerizer, dockerd: Dockerd, tmp_path: Path
) -> None:
    sandbox = tmp_path / "sandbox"
    task = await containerizer.launch(
        launch_of(
            sandbox,
            "echo out; echo err >&2; env > $MESOS_SANDBOX/env; id -u; exit 3",
            environment={"GREETING": "hello world"},
        )
    )
    with trio.fail_after(30):
        termination = await task.wait()
    assert (termination.exit_code, termination.oom_killed) == (3, False)
    assert termination.message == "Container exited with status 3"
    assert (sandbox / "stdout").read_text() == "out\n0\n"
    assert (sandbox / "stderr").read_text() == "err\n"
    env = dict(line.split("=", 1) for line in (sandbox / "env").read_text().splitlines())
    assert env["MESOS_SANDBOX"] == "/mnt/mesos/sandbox"
    assert env["MESOS_CONTAINER_NAME"] == f"mesos-{task.container_id}"
    assert env["GREETING"] == "hello world"
    assert env["PORT0"] == "31001"
    assert env["PATH"] == "/bin"  # the image's, not the agent's
    assert ours(dockerd, task) == []  # removed once it ended


async def test_resources_labels_and_cgroup_limits(
    containerizer: DockerContainerizer, dockerd: Dockerd, tmp_path: Path, work_dir: Path
) -> None:
    task = await containerizer.launch(
        launch_of(tmp_path / "sandbox", "exec sleep 300", resources={"cpus": 0.5, "mem": 48.0})
    )
    try:
        with dockerd.client() as client:
            details = client.get(f"/containers/{task.docker_id}/json").json()
        host = details["HostConfig"]
        assert (host["Memory"], host["MemorySwap"]) == (48 << 20, 48 << 20)
        assert (host["CpuShares"], host["CpuPeriod"], host["CpuQuota"]) == (512, 100000, 50000)
        assert host["NetworkMode"] == "host"
        assert f"{tmp_path / 'sandbox'}:/mnt/mesos/sandbox" in host["Binds"]
        labels = details["Config"]["Labels"]
        assert labels[CONTAINER_LABEL] == task.container_id
        assert labels[TASK_LABEL] == "app.task-1"
        assert labels[WORK_DIR_LABEL] == str(work_dir)
        assert details["Name"] == f"/mesos-{task.container_id}"
        memory = Path("/sys/fs/cgroup/memory", dockerd.cgroup_parent, task.docker_id)
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(48 << 20)
        cpu = Path("/sys/fs/cgroup/cpu", dockerd.cgroup_parent, task.docker_id)
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    finally:
        await task.kill(grace_period=0)
        with trio.fail_after(30):
            await task.wait()
    assert dockerd.cgroups() == []


async def test_kill_honours_the_grace_period(
    containerizer: DockerContainerizer, tmp_path: Path
) -> None:
    # PID 1 of a container ignores SIGTERM without a handler: only SIGKILL ends it.
    stubborn = await containerizer.launch(launch_of(tmp_path / "a", "exec sleep 300"))
    polite = await containerizer.launch(
        launch_of(tmp_path / "b", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
    )
    await trio.sleep(0.5)  # the trap is set
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: stubborn.kill(grace_period=2))
        nursery.start_soon(lambda: polite.kill(grace_period=2))
    stubborn_end = await stubborn.wait()
    polite_end = await polite.wait()
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 6.0, elapsed
    assert stubborn_end.exit_code == 137
    assert polite_end.exit_code == 0
    assert (tmp_path / "b" / "stdout").read_text() == "bye\n"


async def test_an_oom_kill_is_a_memory_limitation(
    containerizer: DockerContainerizer, tmp_path: Path
) -> None:
    task = await containerizer.launch(
        launch_of(
            tmp_path / "sandbox",
            "x=a; while true; do x=$x$x; done",
            resources={"cpus": 0.5, "mem": 32.0},
        )
    )
    with trio.fail_after(60):
        termination = await task.wait()
    assert termination.oom_killed
    assert termination.exit_code == 137
    assert termination.message.startswith("Memory limit exceeded: Requested: 32MB")


async def test_a_missing_image_fails_the_launch_at_once(
    containerizer: DockerContainerizer, dockerd: Dockerd, tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError) as failure:
        await containerizer.launch(launch_of(tmp_path / "sandbox", "true", image=UNREACHABLE))
    assert time.monotonic() - started < 5
    message = str(failure.value)
    assert message.startswith(f"Failed to pull image '{UNREACHABLE}': ")
    assert "connection refused" in message
    assert not [c for c in dockerd.containers() if c["Image"] == UNREACHABLE]


async def test_force_pull_pulls_even_a_present_image(
    containerizer: DockerContainerizer, dockerd: Dockerd, tmp_path: Path
) -> None:
    local = "127.0.0.1:9/busybox:present"
    with dockerd.client() as client:
        response = client.post(
            f"/images/{BUSYBOX}/tag", params={"repo": "127.0.0.1:9/busybox", "tag": "present"}
        )
        assert response.status_code == 201, response.text
    task = await containerizer.launch(launch_of(tmp_path / "a", "true", image=local))
    assert (await task.wait()).exit_code == 0  # present: no pull
    with pytest.raises(RuntimeError, match=re.escape(f"Failed to pull image '{local}'")):
        await containerizer.launch(
            launch_of(tmp_path / "b", "true", image=local, docker={"force_pull_image": True})
        )


async def test_parameters_volumes_and_arguments(
    containerizer: DockerContainerizer, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in").write_text("from the host\n")
    task = await containerizer.launch(
        launch_of(
            tmp_path / "sandbox",
            None,
            shell=False,
            arguments=(
                "sh",
                "-c",
                "grep registry /etc/hosts; id -u; cat /data/in; "
                "echo relative > /mnt/mesos/sandbox/cache/out",
            ),
            docker={
                "parameters": [
                    {"key": "add-host", "value": "registry:127.0.0.9"},
                    {"key": "user", "value": "nobody"},
                    {"key": "label", "value": "team=blue"},
                ]
            },
            volumes=[
                {"container_path": "/data", "host_path": str(shared), "mode": "RO"},
                {"container_path": "cache", "host_path": str(shared), "mode": "RW"},
            ],
        )
    )
    with trio.fail_after(30):
        termination = await task.wait()
    stdout = (tmp_path / "sandbox" / "stdout").read_text()
    assert termination.exit_code == 1, stdout  # nobody may not write to the host dir
    assert stdout.split("\n")[:3] == ["127.0.0.9\tregistry", "65534", "from the host"]


async def test_an_unsupported_parameter_fails_the_launch_naming_it(
    containerizer: DockerContainerizer, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="Docker parameter 'log-driver' is not supported"):
        await containerizer.launch(
            launch_of(
                tmp_path / "sandbox",
                "true",
                docker={"parameters": [{"key": "log-driver", "value": "none"}]},
            )
        )


async def test_a_restarted_agent_recovers_its_container_and_its_output(
    dockerd: Dockerd, work_dir: Path, tmp_path: Path
) -> None:
    sandbox = tmp_path / "sandbox"
    first = DockerContainerizer(dockerd.socket, work_dir=work_dir)
    script = "echo one; until [ -e /mnt/mesos/sandbox/go ]; do sleep 0.1; done; echo two; sleep 300"
    task = await first.launch(launch_of(sandbox, script))
    try:
        with trio.move_on_after(1):  # the agent watches it, then dies
            await task.wait()
        assert (sandbox / "stdout").read_text() == "one\n"
        await first.engine.aclose()

        again = DockerContainerizer(dockerd.socket, work_dir=work_dir)
        await again.remove_orphans({task.container_id})
        recovered = await again.recover(task.container_id, sandbox)
        assert recovered is not None and recovered.docker_id == task.docker_id
        assert await again.recover("no-such-container", sandbox) is None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(recovered.wait)
            (sandbox / "go").touch()
            with trio.fail_after(10):
                while (sandbox / "stdout").read_text() != "one\ntwo\n":
                    await trio.sleep(0.05)
            await recovered.kill(grace_period=0)
        assert ours(dockerd, recovered) == []
        await again.engine.aclose()
    finally:
        with trio.CancelScope(shield=True):
            await first.remove_orphans(())
            await first.engine.aclose()


async def test_orphans_of_this_agent_are_removed_and_no_others(
    dockerd: Dockerd, tmp_path: Path
) -> None:
    mine = DockerContainerizer(dockerd.socket, work_dir=tmp_path / "mine")
    other = DockerContainerizer(dockerd.socket, work_dir=tmp_path / "other")
    try:
        kept = await mine.launch(launch_of(tmp_path / "a", "exec sleep 300"))
        orphan = await mine.launch(launch_of(tmp_path / "b", "exec sleep 300"))
        foreign = await other.launch(launch_of(tmp_path / "c", "exec sleep 300"))
        await mine.remove_orphans({kept.container_id})
        alive = {c["Id"] for c in dockerd.containers()}
        assert kept.docker_id in alive
        assert foreign.docker_id in alive
        assert orphan.docker_id not in alive
    finally:
        with trio.CancelScope(shield=True):
            for containerizer in (mine, other):
                await containerizer.remove_orphans(())
                await containerizer.engine.aclose()


async def test_a_stopping_agent_kills_and_removes_its_containers_in_time(
    containerizer: DockerContainerizer, dockerd: Dockerd, tmp_path: Path
) -> None:
    """As ``kill_all`` of a stopping agent: the watcher is cancelled first, then each
    task is killed with a 1 s grace period and 2 s in all."""
    task = await containerizer.launch(launch_of(tmp_path / "sandbox", "exec sleep 300"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(task.wait)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    with trio.move_on_after(2.0):
        await task.kill(grace_period=1.0)
    assert ours(dockerd, task) == []


async def test_exec_runs_a_command_in_the_container_and_a_cancel_kills_it(
    containerizer: DockerContainerizer, tmp_path: Path
) -> None:
    """A COMMAND health check of a Docker task: ``docker exec`` in its container."""
    sandbox = tmp_path / "sandbox"
    task = await containerizer.launch(
        launch_of(sandbox, "touch /tmp/ok; sleep 300", environment={"GREETING": "hi"})
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(task.wait)  # as the agent watches it
        try:
            check = launch_of(sandbox, 'test -e /tmp/ok && echo "in $GREETING" >&2; exit 4')
            with trio.fail_after(30):
                termination = await task.exec(check)
                while "in hi" not in (sandbox / "stderr").read_text():  # /tmp/ok not yet there
                    await trio.sleep(0.1)
                    termination = await task.exec(check)
            assert termination.exit_code == 4  # in the container, with its environment
            started = time.monotonic()
            with trio.move_on_after(1.0) as scope:
                await task.exec(launch_of(sandbox, "sleep 60"))
            assert scope.cancelled_caught and time.monotonic() - started < 10
            with trio.fail_after(30):
                listing = await task.exec(launch_of(sandbox, "ps | grep -c '[s]leep 60' >&2"))
            assert listing.exit_code == 1  # no such process left: killed
        finally:
            with trio.fail_after(30):
                await task.kill(grace_period=0)
