"""How long a task takes to start on an embedded agent, beside starting the same thing by hand.

Run: ``.venv/bin/python benchmarks/bench_task_start.py [--rounds N]`` (as root, with the
Debian packages docker.io and busybox-static installed).

Starts a private Docker Engine (``marathon_runtime_docker.testing``: own data root and
socket, ``busybox:local`` imported without a registry) and ``marathon-mesos-local`` as
its own process with one real agent (``--containerizers mesos,docker``). A framework in
this process then launches one task at a time through the v1 scheduler API and times
the ACCEPT call to the TASK_RUNNING update, then kills it and waits for TASK_KILLED
before the next round. Two arms:

* a command task ``sleep 600``, beside ``subprocess.Popen(["sh", "-c", "sleep 600"])``
  in this process (the floor: a fork and an exec, no agent, no HTTP);
* a Docker task ``busybox:local`` running ``sleep 600`` with host networking, beside
  ``docker run -d --network host busybox:local sleep 600`` against the same daemon (the
  docker CLI returns once the container has started, as TASK_RUNNING means it has).

Baselines and arms alternate within each round, so both see the same machine.
Reported: median and p90 of each, and the ratio of the medians (arm / baseline).

Measured on the 2-core development machine, 2026-12-03, 20 rounds, with other work
running on it (load average 2.9):

============ ====================== ============================= =====
arm          median / p90           baseline median / p90         ratio
============ ====================== ============================= =====
command task  33.2 ms /  52.6 ms    Popen        3.0 ms /  10.0 ms 11.1x
docker task  431.8 ms / 753.6 ms    docker run 410.1 ms / 863.3 ms  1.1x
============ ====================== ============================= =====

The command task's 30 ms over ``Popen`` are the path a real cluster has too: the
ACCEPT over HTTP, the master's launch to the agent, the agent's sandbox and status
update, the master's UPDATE on the stream. A Docker task costs what ``docker run``
costs, within 5%: the Engine's create and start dominate.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from marathon_mesos_local.testing import MasterProcess, SchedulerClient, task_info
from marathon_runtime_docker.testing import BUSYBOX, dockerd_missing, running_dockerd

SLEEP = "sleep 600"


async def start_task(
    client: SchedulerClient, task_id: str, *, docker: bool, since: int
) -> tuple[float, int]:
    """Launch one task on the next offer; seconds from ACCEPT to TASK_RUNNING, then kill it."""
    offer = (await client.wait_offers(since=since, timeout=30))[0]
    extra: dict[str, Any] = {}
    if docker:
        extra["container"] = {"type": "DOCKER", "docker": {"image": BUSYBOX, "network": "HOST"}}
    info = task_info(offer, task_id, SLEEP, cpus=0.1, mem=32.0, **extra)
    started = time.perf_counter()
    await client.launch([offer], [info])
    after = len(client.events)  # the next round takes an offer made after this launch
    await client.wait_update(task_id, "TASK_RUNNING", timeout=60)
    elapsed = time.perf_counter() - started
    await client.call(
        {"type": "KILL", "kill": {"task_id": {"value": task_id}, "agent_id": offer["agent_id"]}}
    )
    await client.wait_update(task_id, "TASK_KILLED", timeout=60)
    return elapsed, after


def popen_seconds() -> float:
    """The floor for a command task: fork and exec of the same shell command."""
    started = time.perf_counter()
    process = subprocess.Popen(["sh", "-c", SLEEP], start_new_session=True)
    elapsed = time.perf_counter() - started
    os.killpg(process.pid, signal.SIGKILL)  # the shell and the sleep it may have forked
    process.wait()
    return elapsed


def docker_run_seconds(socket: str, name: str) -> float:
    """The floor for a Docker task: ``docker run -d`` of the same image and command."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}"}
    argv = ["docker", "run", "-d", "--name", name, "--network", "host", BUSYBOX, *SLEEP.split()]
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    subprocess.run(["docker", "rm", "-f", name], env=env, check=True, capture_output=True)
    return elapsed


def summary(samples: list[float]) -> Mapping[str, float]:
    ordered = sorted(samples)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
    }


async def run(rounds: int) -> None:
    times: dict[str, list[float]] = {"command": [], "popen": [], "docker": [], "docker run": []}
    with running_dockerd() as daemon, tempfile.TemporaryDirectory(prefix="bts-") as work:
        flags = ("--agents", "1", "--containerizers", "mesos,docker")
        master = MasterProcess(Path(work), *flags, "--docker_socket", daemon.socket)
        await master.start()
        client = SchedulerClient(master.url)
        try:
            async with trio.open_nursery() as nursery:
                await client.subscribe(nursery, name="bench-task-start")
                since = 0
                for i in range(rounds):
                    seconds, since = await start_task(client, f"cmd-{i}", docker=False, since=since)
                    times["command"].append(seconds)
                    times["popen"].append(popen_seconds())
                    seconds, since = await start_task(client, f"dkr-{i}", docker=True, since=since)
                    times["docker"].append(seconds)
                    times["docker run"].append(docker_run_seconds(daemon.socket, f"base-{i}"))
                await client.disconnect()
                nursery.cancel_scope.cancel()
        finally:
            await client.aclose()
            await master.stop()
    print(f"{rounds} rounds; load average {os.getloadavg()[0]:.1f}")
    for arm, baseline in (("command", "popen"), ("docker", "docker run")):
        a, b = summary(times[arm]), summary(times[baseline])
        print(
            f"{arm:8} task: median {a['median'] * 1000:7.1f} ms  p90 {a['p90'] * 1000:7.1f} ms | "
            f"{baseline:10}: median {b['median'] * 1000:7.1f} ms  p90 {b['p90'] * 1000:7.1f} ms | "
            f"ratio {a['median'] / b['median']:.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    why = dockerd_missing()
    if why is not None:
        sys.exit(f"cannot run: {why}")
    trio.run(run, args.rounds)


if __name__ == "__main__":
    main()
