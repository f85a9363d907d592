"""marathon-ctl against ``marathon --master local``: real agents, real tasks, real
events. Goldens for ``app list``, ``why``, ``deployment watch`` and ``diff``; exit codes
0, 2 and 3 of ``deploy --watch``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from marathon_core.testing.processes import (
    RunningMarathon,
    local_cluster_args,
    running_marathon,
    wait_for,
)

from .conftest import Ctl  # type: ignore[import-not-found]
from .live import app_file, check_golden  # type: ignore[import-not-found]

pytestmark = pytest.mark.cluster

AGENTS = "cpus:2;mem:1024;disk:1000;ports:[31000-31100]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMarathon]:
    with running_marathon(
        *local_cluster_args(2, agent_resources=AGENTS), state_dir=tmp_path_factory.mktemp("state")
    ) as running:
        yield running
        assert running.stop() == 0


@pytest.fixture
def env(server: RunningMarathon) -> dict[str, str]:
    return {"MARATHON_URL": server.url}


def master_url(server: RunningMarathon) -> str:
    for line in server.log:
        if match := re.search(r"mesos master \S+ listening on (http://\S+)", line):
            return match.group(1)
    raise AssertionError("the embedded master's address is not in the log")


def test_deploy_list_and_diff(ctl: Ctl, env: dict[str, str], tmp_path: Path) -> None:
    for name, instances in (("a", 2), ("b", 1)):
        path = app_file(tmp_path, id=f"/golden/{name}", instances=instances)
        result = ctl("deploy", path, "--watch", env=env)
        assert result.exit_code == 0, result.output
    check_golden("app_list", ctl("app", "list", "--group", "/golden", env=env).stdout)
    assert ctl("app", "list", "-q", env=env).stdout.splitlines()[:2] == ["/golden/a", "/golden/b"]

    changed = app_file(tmp_path, id="/golden/a", cmd="sleep 2000", instances=3, env={"X": "1"})
    group = tmp_path / "group.json"
    group.write_text(
        json.dumps({"id": "/golden", "apps": [{"id": "a", "cmd": "sleep 1000"}, {"id": "c"}]})
    )
    diffs = ctl("diff", changed, env=env).stdout + ctl("diff", str(group), env=env).stdout
    check_golden("diff", diffs)


def test_a_rolling_upgrade_is_watched_to_the_end(
    ctl: Ctl, env: dict[str, str], tmp_path: Path
) -> None:
    strategy = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
    first = app_file(tmp_path, id="/roll/web", instances=2, upgradeStrategy=strategy)
    assert ctl("deploy", first, "--watch", env=env).exit_code == 0
    second = app_file(
        tmp_path, id="/roll/web", instances=2, upgradeStrategy=strategy, cmd="sleep 1001"
    )
    result = ctl("deploy", second, "--watch", "--timeout", "60", env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "step 1/1 RestartApplication /roll/web" in lines[1]
    assert sum(" Killed " in line and " old /roll/web." in line for line in lines) == 2
    assert any(line.endswith("(/roll/web 2/2 running)") for line in lines)
    assert lines[-2:-1] == ["/roll/web: 2/2 running"]
    assert lines[-1].startswith("✓ deployment ") and "succeeded" in lines[-1]

    result = ctl("app", "scale", "/roll/web", "1", "--watch", "--json", env=env)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and events[-1]["eventType"] == "ctl_result"
    assert events[-1]["outcome"] == "succeeded" and events[-1]["apps"]["/roll/web"]["running"] == 1

    scaled = ctl("group", "scale", "/roll", "2", "--watch", env=env)  # apps learnt from the plan
    assert scaled.exit_code == 0 and "/roll/web: 2/2 running" in scaled.stdout.splitlines()


def test_an_unplaceable_app_says_why_and_times_out(
    ctl: Ctl, env: dict[str, str], tmp_path: Path
) -> None:
    path = app_file(tmp_path, id="/stuck/uniq", instances=3, constraints=[["hostname", "UNIQUE"]])
    result = ctl("deploy", path, "--watch", "--timeout", "8", env=env)
    assert result.exit_code == 3, result.output
    assert "waiting: /stuck/uniq: 1 instance(s) wait: no offer matches: " in result.stdout
    assert "UNIQUE: hostname=" in result.stdout
    assert "keeps running (marathon-ctl deployment watch " in result.stdout
    check_golden("why", ctl("why", "/stuck/uniq", env=env).stdout)

    (deployment_id,) = ctl("deployment", "list", "-q", env=env).stdout.split()
    watched = ctl("deployment", "watch", deployment_id, "--timeout", "5", env=env)
    assert watched.exit_code == 3
    check_golden("deployment_watch", watched.stdout)
    assert ctl("app", "remove", "/stuck/uniq", "--force", "--watch", env=env).exit_code == 0


def test_a_rolled_back_deployment_exits_2(
    ctl: Ctl, env: dict[str, str], server: RunningMarathon, tmp_path: Path
) -> None:
    assert ctl("deploy", app_file(tmp_path, id="/rb/web"), "--watch", env=env).exit_code == 0
    stuck = app_file(tmp_path, id="/rb/web", instances=3, constraints=[["hostname", "UNIQUE"]])

    def roll_back() -> None:
        running = wait_for(
            lambda: httpx.get(f"{server.url}/v2/deployments", timeout=5).json(),
            what="the deployment",
        )
        wait_for(lambda: httpx.get(f"{server.url}/v2/queue", timeout=5).json()["queue"])
        httpx.delete(f"{server.url}/v2/deployments/{running[0]['id']}", timeout=5)

    thread = threading.Thread(target=roll_back)
    thread.start()
    result = ctl("deploy", stuck, "--watch", "--timeout", "60", env=env)
    thread.join()
    assert result.exit_code == 2, result.output
    assert "rolled back" in result.stdout.splitlines()[-1]
    app = httpx.get(f"{server.url}/v2/apps/rb/web", timeout=5).json()["app"]
    assert app["instances"] == 1 and not app.get("constraints")
    ctl("app", "remove", "/rb/web", "--force", "--watch", env=env)


def test_task_logs_from_the_agents_sandbox(
    ctl: Ctl, env: dict[str, str], server: RunningMarathon, tmp_path: Path
) -> None:
    """No --mesos-url: /v2/info's mesos_leader_ui_url names the embedded master."""
    path = app_file(tmp_path, id="/logs/echo", cmd="echo hello from the sandbox; sleep 1000")
    assert ctl("deploy", path, "--watch", env=env).exit_code == 0
    info = httpx.get(f"{server.url}/v2/info", timeout=5).json()
    assert info["marathon_config"]["mesos_leader_ui_url"] == master_url(server)
    (task_id,) = ctl("task", "list", "-q", "/logs/echo", env=env).stdout.split()
    logs = ctl("task", "logs", task_id, env=env)
    assert logs.exit_code == 0 and logs.stdout == "hello from the sandbox\n"
    killed = ctl("task", "kill", task_id, "--scale", env=env)
    assert killed.exit_code == 0 and killed.stdout.startswith("deployment ")


def test_task_logs_follow_prints_new_lines_until_interrupted(
    ctl: Ctl, env: dict[str, str], tmp_path: Path
) -> None:
    counting = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.3; done"
    path = app_file(tmp_path, id="/logs/count", cmd=counting)
    assert ctl("deploy", path, "--watch", env=env).exit_code == 0
    (task_id,) = ctl("task", "list", "-q", "/logs/count", env=env).stdout.split()
    command = [sys.executable, "-m", "marathon_ctl", "task", "logs", "-f", task_id]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env, "MARATHON_CTL_CONFIG": "/nonexistent"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        seen.append(first)
        # Lines written after the first read arrive through the follow loop.
        while len(seen) < 2 or int(seen[-1].split()[1]) < int(first.split()[1]) + 5:
            seen.append(process.stdout.readline())
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    numbers = [int(line.split()[1]) for line in seen]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # none lost or doubled
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert ctl("app", "remove", "/logs/count", "--watch", env=env).exit_code == 0


def test_ctrl_c_leaves_the_deployment_running_and_exits_130(
    env: dict[str, str], server: RunningMarathon, tmp_path: Path
) -> None:
    path = app_file(tmp_path, id="/int/uniq", instances=3, constraints=[["hostname", "UNIQUE"]])
    command = [sys.executable, "-m", "marathon_ctl", "deploy", path, "--watch"]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env, "MARATHON_CTL_CONFIG": "/nonexistent"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "waiting:" in line:
                break
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "interrupted: deployment " in stderr and "keeps running" in stderr
    assert httpx.get(f"{server.url}/v2/deployments", timeout=5).json()  # still running
    httpx.delete(f"{server.url}/v2/apps/int/uniq?force=true", timeout=5)
