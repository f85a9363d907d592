"""Which containerizers an agent uses (``--containerizers``), what a task is given, and
orphans of the command containerizer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import pytest
import trio

from marathon_core.contracts.containerizers import Launch
from marathon_core.task_process import process_alive, start_task_process
from marathon_mesos_local.agent.containerizers import (
    Containerizers,
    launch_of,
    parse_containerizers,
)
from marathon_mesos_local.agent.model import TaskRun
from marathon_mesos_local.cli import main as cli_main
from marathon_mesos_local.cluster import ClusterOptions
from marathon_mesos_local.containerizer import CommandContainerizer


class Named:
    """A containerizer that is only told apart by its name: these tests pick one and
    never start a task through it."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def launch(self, launch: Launch) -> None:
        raise AssertionError(f"containerizer {self.name} was asked to launch {launch.task_id}")

    async def recover(self, container_id: str, sandbox: Path) -> None:
        return None

    async def remove_orphans(self, known: Collection[str]) -> None:
        return None


def task(container: dict[str, object] | None, tmp_path: Path) -> TaskRun:
    info: dict[str, object] = {
        "task_id": {"value": "t1"},
        "command": {"value": "true", "user": "nobody",
                    "environment": {"variables": [{"name": "APP", "value": "1"}]}},
        "resources": [{"name": "ports", "type": "RANGES",
                       "ranges": {"range": [{"begin": 31000, "end": 31000}]}}],
    }  # fmt: skip
    if container is not None:
        info["container"] = container
    return TaskRun("F", {}, info, "run", tmp_path / "sandbox")


def test_only_enabled_containerizers_are_used(tmp_path: Path) -> None:
    command = CommandContainerizer()
    found = Containerizers(
        command, {"MESOS": Named("mesos"), "DOCKER": Named("docker")}, frozenset({"mesos"})
    )
    assert found.of(task({"type": "MESOS", "mesos": {}}, tmp_path))[0] == "MESOS"
    kind, docker = found.of(task({"type": "DOCKER", "docker": {"image": "i"}}, tmp_path))
    assert (kind, docker) == ("DOCKER", None)
    assert found.unsupported("DOCKER") == (
        "Container type DOCKER is not enabled on this agent (--containerizers=mesos); "
        "start the agent with --containerizers=mesos,docker"
    )
    assert (
        found.unsupported("APPC") == "No containerizer on this agent supports container type APPC"
    )
    assert found.of(task(None, tmp_path)) == ("command", command)


def test_containerizer_names_are_mesos_ones() -> None:
    assert parse_containerizers(" mesos , docker") == frozenset({"mesos", "docker"})
    with pytest.raises(ValueError, match="unknown or unsupported containerizer appc"):
        parse_containerizers("mesos,appc")
    with pytest.raises(ValueError, match="unknown or unsupported containerizer"):
        ClusterOptions(containerizers="").check()


def test_the_console_script_refuses_an_unknown_containerizer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli_main(["--containerizers", "mesos,rkt"]) == 2
    assert "unknown or unsupported containerizer rkt" in capsys.readouterr().err


def test_a_docker_task_gets_its_own_environment_not_the_agents(tmp_path: Path) -> None:
    docker = launch_of(
        task({"type": "DOCKER", "docker": {"image": "i"}}, tmp_path),
        agent_id="S0",
        ip="127.0.0.2",
        port=5051,
    )
    assert "PATH" not in docker.environment
    assert docker.environment["APP"] == "1" and docker.environment["PORT0"] == "31000"
    assert docker.environment["HOST"] == "127.0.0.2"
    assert docker.user == "nobody"
    plain = launch_of(task(None, tmp_path), agent_id="S0", ip="127.0.0.2", port=5051)
    assert plain.environment["PATH"] == os.environ["PATH"]


@pytest.mark.processes
async def test_command_orphans_under_the_work_dir_are_killed(tmp_path: Path) -> None:
    def launch(agent: str, name: str) -> Launch:
        sandbox = tmp_path / agent / name
        return Launch(
            task_id=name,
            command="exec sleep 300",
            arguments=(),
            shell=True,
            environment={"PATH": os.environ["PATH"], "MESOS_SANDBOX": str(sandbox)},
            sandbox=sandbox,
            resources={},
        )

    started = [
        await start_task_process(launch(agent, name), f"{agent}-{name}")
        for agent, name in (("mine", "kept"), ("mine", "orphan"), ("other", "foreign"))
    ]
    try:
        await CommandContainerizer(work_dir=tmp_path / "mine").remove_orphans({"mine-kept"})
        with trio.fail_after(5):
            assert await started[1].wait() == -signal.SIGKILL
        assert process_alive(started[0].pid) and process_alive(started[2].pid)
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.mark.processes
def test_the_agent_process_takes_the_mesos_flags(tmp_path: Path) -> None:
    """``python -m marathon_mesos_local.agent --containerizers`` refuses what Mesos would."""
    result = subprocess.run(
        [sys.executable, "-m", "marathon_mesos_local.agent", "--master", "http://127.0.0.1:1",
         "--ip", "127.0.0.2", "--work_dir", str(tmp_path), "--containerizers", "docker,lxc"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown or unsupported containerizer lxc" in result.stderr
