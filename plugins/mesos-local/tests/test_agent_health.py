"""Health checks run by the agent (``TaskInfo.health_check``), as Mesos's executors run them.

The rules run under the mock clock with scripted results; the scenarios run real
tasks on a real agent with a scheduler over HTTP, and check every status update
against the real protos (the ``schedulers`` fixture).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from marathon_core.contracts.containerizers import Launch
from marathon_mesos_local.agent.health import (
    HEALTH_REASON,
    CheckSpec,
    HealthReport,
    check_port,
    parse_check,
    run_health_checks,
)
from marathon_mesos_local.containerizer import CommandContainerizer
from marathon_mesos_local.testing import task_info


async def scripted(
    spec: CheckSpec, results: list[str | None], clock: trio.testing.MockClock
) -> list[tuple[float, HealthReport]]:
    """Run the rules over ``results`` (None: healthy), one per check; what was reported, when."""
    reports: list[tuple[float, HealthReport]] = []
    pending = iter(results)
    start = trio.current_time()

    class ScriptDone(Exception):
        pass

    async def probe() -> str | None:
        try:
            return next(pending)
        except StopIteration:
            raise ScriptDone from None

    with pytest.raises(ScriptDone):
        await run_health_checks(
            spec, probe=probe, report=lambda r: reports.append((trio.current_time() - start, r))
        )
    return reports


async def test_failures_in_the_grace_period_before_a_success_are_ignored(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spec = CheckSpec("COMMAND", delay=1, interval=1, grace_period=3.5, consecutive_failures=2)
    # Checks at 1, 2, 3 (in grace), 4, 5 (counted).
    reports = await scripted(spec, ["no", "no", "no", "no", "no"], autojump_clock)
    assert [(t, r.consecutive_failures, r.kill_task) for t, r in reports] == [
        (4, 1, False),
        (5, 2, True),
    ]
    assert not any(r.healthy for _, r in reports)


async def test_after_a_first_success_the_grace_period_no_longer_applies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spec = CheckSpec("COMMAND", delay=0, interval=1, grace_period=100, consecutive_failures=3)
    reports = await scripted(spec, [None, None, "x", "x", None, None, "x"], autojump_clock)
    # The first success and the first after failures are reported; every failure is.
    assert [(r.healthy, r.consecutive_failures) for _, r in reports] == [
        (True, 0),
        (False, 1),
        (False, 2),
        (True, 0),
        (False, 1),
    ]
    assert not any(r.kill_task for _, r in reports)


def test_the_proto_defaults_apply_and_a_zero_timeout_means_none() -> None:
    spec = parse_check({"health_check": {"type": "TCP", "tcp": {"port": 80}, "timeout_seconds": 0}})
    assert spec == CheckSpec(
        "TCP",
        delay=15.0,
        interval=10.0,
        timeout=None,
        consecutive_failures=3,
        grace_period=10.0,
        port=80,
    )
    assert parse_check({}) is None
    assert parse_check({"health_check": {"type": "HTTP"}}) is None  # no http: not valid


def test_a_docker_container_port_is_checked_on_its_host_port() -> None:
    info = {
        "container": {
            "type": "DOCKER",
            "docker": {"port_mappings": [{"host_port": 31005, "container_port": 80}]},
        }
    }
    assert check_port(info, 80) == 31005
    assert check_port(info, 31005) == 31005
    assert check_port({}, 8080) == 8080


@pytest.mark.processes
async def test_exec_runs_as_the_task_in_its_sandbox_and_a_timeout_kills_it(
    tmp_path: Path,
) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    launch = Launch("t", "sleep 60", (), True, {"PATH": os.environ["PATH"], "X": "42"}, sandbox, {})
    containerizer = CommandContainerizer()
    running = await containerizer.launch(launch)
    try:
        check = Launch(
            "t", 'echo "x=$X pwd=$(pwd)"; exit 3', (), True, launch.environment, sandbox, {}
        )
        termination = await running.exec(check)
        assert termination.exit_code == 3
        assert f"x=42 pwd={sandbox}" in (sandbox / "stderr").read_text()
        marker = tmp_path / "grandchild"
        slow = Launch(
            "t", f"(sleep 30; touch {marker}) & sleep 30", (), True, launch.environment, sandbox, {}
        )
        with trio.move_on_after(0.5) as scope:
            await running.exec(slow)
        assert scope.cancelled_caught
        await trio.sleep(0.3)
        # The whole check was killed, grandchild too; the task still runs.
        leftover = [
            pid
            for pid in os.listdir("/proc")
            if pid.isdigit() and _cmdline(pid).startswith(f"sh -c (sleep 30; touch {marker})")
        ]
        assert leftover == []
        assert running.pid is not None and os.path.exists(f"/proc/{running.pid}")
    finally:
        await running.kill(grace_period=0)
        await running.wait()


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def health_check(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "delay_seconds": 0.0,
        "interval_seconds": 0.3,
        "timeout_seconds": 2.0,
        "consecutive_failures": 2,
        "grace_period_seconds": 0.0,
        **fields,
    }


def health_updates(client: Any, task_id: str) -> list[dict[str, Any]]:
    return [
        e["update"]["status"]
        for e in client.events
        if e["type"] == "UPDATE"
        and e["update"]["status"]["task_id"]["value"] == task_id
        and e["update"]["status"].get("reason") == HEALTH_REASON
    ]


async def test_a_command_check_that_starts_failing_gets_the_task_killed(
    cluster: Any, schedulers: Any, nursery: trio.Nursery
) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    # Healthy while the file exists; the check runs in the sandbox, with the task's env.
    check = health_check(
        "COMMAND", command={"shell": True, "value": 'test -e ok && test "$X" = 42'}
    )
    info = task_info(offer, "hc.cmd", "touch ok; sleep 1.5; rm ok; sleep 60", env={"X": "42"})
    info["health_check"] = check
    info["kill_policy"] = {"grace_period": {"nanoseconds": 500_000_000}}
    await client.launch([offer], [info])
    killed = await client.wait_update("hc.cmd", "TASK_KILLED", timeout=20)
    assert killed["healthy"] is False
    reports = [s["healthy"] for s in health_updates(client, "hc.cmd")]
    assert reports == [True, False, False]  # healthy once, then every counted failure
    (first, *_) = health_updates(client, "hc.cmd")
    assert first["state"] == "TASK_RUNNING"
    assert first["container_status"]["network_infos"][0]["ip_addresses"] == [
        {"ip_address": "127.0.0.2"}
    ]


async def test_an_http_check_against_a_task_serving_http_reports_healthy(
    cluster: Any, schedulers: Any, nursery: trio.Nursery
) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    info = task_info(offer, "hc.http", "exec python3 -m http.server --bind $HOST $PORT0", ports=1)
    port = next(r for r in info["resources"] if r["name"] == "ports")["ranges"]["range"][0]["begin"]
    info["health_check"] = health_check(
        "HTTP", grace_period_seconds=20.0, http={"scheme": "http", "port": port, "path": "/"}
    )
    await client.launch([offer], [info])
    await client.wait_for(
        lambda e: (
            e["type"] == "UPDATE"
            and e["update"]["status"].get("reason") == HEALTH_REASON
            and e["update"]["status"].get("healthy") is True
        ),
        timeout=20,
    )
    await trio.sleep(1.0)  # later successes are not reported again
    assert [s["healthy"] for s in health_updates(client, "hc.http")] == [True]
