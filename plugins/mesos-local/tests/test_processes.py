"""The console script and ``marathon --master local``: start, serve, stop leaving nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from marathon_core.config import parse_config
from marathon_core.plugins import get_plugin_host
from marathon_mesos_local.testing import SchedulerClient, task_info

BIN = Path(sys.executable).parent


def processes_under(root: Path) -> list[int]:
    """Pids whose command line or working directory mentions ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().split(") ")[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(root) in cmdline or cwd.startswith(str(root))):
            found.append(int(entry.name))
    return found


async def wait_for_line(log: Path, pattern: str, timeout: float = 20) -> re.Match[str]:
    with trio.fail_after(timeout):
        while True:
            match = re.search(pattern, log.read_text() if log.exists() else "")
            if match:
                return match
            await trio.sleep(0.05)


async def run_until_sigint(argv: list[str], tmp_path: Path, ready: str, check) -> float:
    """Start ``argv``, wait for ``ready`` in its log, run ``check(match)``, SIGINT it."""
    log = tmp_path / "log"
    with open(log, "wb") as out:
        process = await trio.lowlevel.open_process(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        match = await wait_for_line(log, ready)
        await check(match)
        process.send_signal(signal.SIGINT)
        started = trio.current_time()
        with trio.fail_after(10):
            await process.wait()
        assert process.returncode == 0, log.read_text()
        return trio.current_time() - started
    finally:
        if process.returncode is None:
            process.kill()
        for pid in processes_under(tmp_path):  # only ours: they live under tmp_path
            os.kill(pid, signal.SIGKILL)


async def launch_sleep(url: str) -> None:
    async with trio.open_nursery() as nursery:
        client = SchedulerClient(url)
        await client.subscribe(nursery)
        offer = (await client.wait_offers())[0]
        await client.launch([offer], [task_info(offer, "sleeper", "sleep 300")])
        await client.wait_update("sleeper", "TASK_RUNNING")
        nursery.cancel_scope.cancel()
    await client.aclose()


@pytest.mark.processes
async def test_console_script_serves_until_sigint(tmp_path: Path) -> None:
    work = tmp_path / "work"
    argv = [
        str(BIN / "marathon-mesos-local"), "--port", "0", "--agents", "2",
        "--agent-port", "0", "--first-agent-ip", "127.0.0.40", "--work_dir", str(work),
        "--agent-resources", "cpus:1;mem:512;disk:100;ports:[40000-40010]",
        "--agent-attributes", "rack:r1;zone:a", "--agent-attributes", "rack:r2;zone:b",
    ]  # fmt: skip

    async def check(match: re.Match[str]) -> None:
        url = match.group(1)
        async with httpx.AsyncClient() as http:
            state = (await http.get(url + "/master/state")).json()
        slaves = sorted(state["slaves"], key=lambda s: s["hostname"])
        assert [s["hostname"] for s in slaves] == ["127.0.0.40", "127.0.0.41"]
        assert [s["attributes"] for s in slaves] == [
            {"rack": "r1", "zone": "a"},
            {"rack": "r2", "zone": "b"},
        ]
        assert slaves[0]["resources"]["ports"] == "[40000-40010]"
        await launch_sleep(url)
        assert len(processes_under(work)) >= 3  # two agents and the task

    took = await run_until_sigint(argv, tmp_path, r"master (http://\S+) with 2 agent", check)
    assert took < 5
    assert processes_under(work) == []


@pytest.mark.processes
async def test_console_script_rejects_bad_resources(tmp_path: Path) -> None:
    result = await trio.run_process(
        [str(BIN / "marathon-mesos-local"), "--agent-resources", "cpus:x"],
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 2
    assert b"bad resource" in result.stderr


def test_plugin_is_discovered_and_serves_only_local() -> None:
    host = get_plugin_host()
    assert "mesos-local" in {p.name for p in host.plugins()}
    config = parse_config(["--local_agents", "2"], addoption_hook=host.addoption)
    assert config.option("local_agents") == 2
    assert host.mesos_master("local", config) is not None
    assert host.mesos_master("http://127.0.0.1:5050", config) is not None  # the core's
    from marathon_mesos_local import plugin

    assert plugin.marathon_mesos_master(url="http://x:5050", config=config) is None


@pytest.mark.processes
async def test_marathon_master_local_starts_and_stops_the_cluster(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    argv = [
        str(BIN / "marathon"), "--master", "local", "--state_dir", str(state_dir),
        "--local_master_port", "0", "--local_agent_port", "0", "--http_port", "0",
        "--local_agents", "1",
    ]  # fmt: skip

    async def check(match: re.Match[str]) -> None:
        await launch_sleep(match.group(1))

    took = await run_until_sigint(argv, tmp_path, r"marathon ready: master (http://\S+?),", check)
    assert took < 5
    assert processes_under(state_dir) == []


def test_mesos_timing_flags_in_the_cli_and_the_plugin() -> None:
    from marathon_mesos_local import cli, plugin

    args = cli._parser().parse_args(
        ["--agent_ping_timeout", "500ms", "--max_agent_ping_timeouts", "2",
         "--offer_timeout", "1mins", "--agent_reregister_timeout", "15mins",
         "--simulated-agents", "7"]
    )  # fmt: skip
    assert args.agent_ping_timeout == 0.5 and args.max_agent_ping_timeouts == 2
    assert args.offer_timeout == 60.0 and args.agent_reregister_timeout == 900.0
    assert args.simulated_agents == 7
    assert cli._parser().parse_args([]).offer_timeout is None

    host = get_plugin_host()
    config = parse_config(
        ["--local_agent_ping_timeout", "2secs", "--local_max_agent_ping_timeouts", "3",
         "--local_offer_timeout", "30secs", "--local_agent_reregister_timeout", "10mins",
         "--local_simulated_agents", "100"],
        addoption_hook=host.addoption,
    )  # fmt: skip
    options = plugin.cluster_options(config)
    assert (options.agent_ping_timeout, options.max_agent_ping_timeouts) == (2.0, 3)
    assert (options.offer_timeout, options.agent_reregister_timeout) == (30.0, 600.0)
    assert options.simulated_agents == 100
