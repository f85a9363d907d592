"""Launch rate: tasks reaching RUNNING per second for one app scaled 0 -> N on simulated agents.

Both arms run against the same embedded master with simulated agents, in the same
process, one after the other: a *null scheduler* (accepts every offer with as many
minimal tasks as fit, acknowledges updates, nothing else) and our scheduler (the real
leadership scope: tracker with SQLite state, launch queue, offer matching, TaskInfo
building, status handling). Reported: tasks/s of each, the ratio, and CPU
seconds per 1,000 tasks of each and their ratio. Not a test.

Run: ``.venv/bin/python benchmarks/bench_launch.py [--tasks 2000 --agents 100]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from marathon_core.config import Config
from marathon_core.context import CoreContext
from marathon_core.election import SoloElection
from marathon_core.events import EventBus
from marathon_core.leader.term import lead
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Condition
from marathon_core.model.validation import ValidationContext
from marathon_core.plugins import get_plugin_host
from marathon_core.scheduler.scheduler import SchedulerOptions
from marathon_core.state.sqlite import SqliteStorage
from marathon_core.state.store import StateStore
from marathon_mesos_local.cluster import ClusterOptions, open_cluster
from marathon_mesos_local.testing import SchedulerClient, task_info

CPUS, MEM = 0.01, 1.0


async def null_arm(url: str, tasks: int) -> tuple[float, float]:
    """The null scheduler: (seconds, cpu seconds) until ``tasks`` are RUNNING."""
    client = SchedulerClient(url)
    running: set[str] = set()
    done = trio.Event()
    launched = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        await client.subscribe(nursery, name="null", failover_timeout=60.0)
        seen = 0
        while not done.is_set():
            await client.wait_for(lambda e: True, since=seen, timeout=60)
            events, seen = client.events[seen:], len(client.events)
            for event in events:
                if event["type"] == "UPDATE":
                    status = event["update"]["status"]
                    if status["state"] == "TASK_RUNNING":
                        running.add(status["task_id"]["value"])
                        if len(running) >= tasks:
                            done.set()
                elif event["type"] == "OFFERS":
                    for offer in event["offers"]["offers"]:
                        cpus = next(r for r in offer["resources"] if r["name"] == "cpus")
                        fit = min(int(cpus["scalar"]["value"] / CPUS), tasks - launched)
                        infos = [
                            task_info(
                                offer, f"null.{launched + i}", "sleep 1000", cpus=CPUS, mem=MEM
                            )
                            for i in range(fit)
                        ]
                        launched += fit
                        if infos:
                            nursery.start_soon(client.launch, [offer], infos)
                        else:
                            nursery.start_soon(client.decline, [offer], 120.0)
        took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        await client.call({"type": "TEARDOWN"})
        nursery.cancel_scope.cancel()
    await client.aclose()
    return took, cpu


async def our_arm(url: str, tasks: int, state_dir: Path) -> tuple[float, float]:
    storage = await SqliteStorage.open(state_dir / "state.sqlite3")
    state = await StateStore.open(storage)
    config = Config(master=url, hostname="localhost", state_dir=str(state_dir))
    ctx = CoreContext(
        config=config,
        plugins=get_plugin_host(load_entrypoints=False),
        master_url=url,
        state=state,
        validation=ValidationContext(),
        election=SoloElection("localhost:8080"),
        events=EventBus(),
    )
    app = AppDefinition(
        id=PathId.parse("/bench/launch"), cmd="sleep 1000", cpus=CPUS, mem=MEM,
        instances=tasks, version=Timestamp.now(),
    )  # fmt: skip
    options = SchedulerOptions.from_config(config, min_revive_offers_interval=0.1)
    try:
        async with trio.open_nursery() as nursery:
            leader = await nursery.start(
                lambda task_status: lead(ctx, options=options, task_status=task_status)
            )
            await leader.mesos.wait_subscribed()
            tracker = leader.tracker
            cpu0, t0 = time.process_time(), time.perf_counter()
            await tracker.schedule(app, tasks)
            while True:
                alive = sum(
                    1 for i in tracker.instances_of(app.id) if i.condition is Condition.RUNNING
                )
                if alive >= tasks:
                    break
                await tracker.wait_changed()
            took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            nursery.cancel_scope.cancel()
    finally:
        await storage.aclose()
    return took, cpu


async def main(args: argparse.Namespace) -> dict[str, Any]:
    resources = f"cpus:{args.agent_cpus};mem:100000;disk:10000;ports:[31000-32000]"
    options = ClusterOptions(
        port=0, agents=0, simulated_agents=args.agents, agent_resources=resources,
        allocation_interval=args.allocation_interval, status_update_retry=5.0,
    )  # fmt: skip
    async with open_cluster(options) as cluster:
        null_s, null_cpu = await null_arm(cluster.url, args.tasks)
        await trio.sleep(1.0)  # the master frees the null framework's resources
        with tempfile.TemporaryDirectory() as tmp:
            ours_s, ours_cpu = await our_arm(cluster.url, args.tasks, Path(tmp))
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {
        "benchmark": "launch",
        "tasks": args.tasks,
        "agents": args.agents,
        "null_tasks_per_s": round(args.tasks / null_s, 1),
        "ours_tasks_per_s": round(args.tasks / ours_s, 1),
        "b1_ratio": round(null_s / ours_s, 3),
        "null_cpu_s_per_1000": round(null_cpu / args.tasks * 1000, 3),
        "ours_cpu_s_per_1000": round(ours_cpu / args.tasks * 1000, 3),
        "b10_ratio": round(ours_cpu / null_cpu, 3) if null_cpu else None,
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
        "git": sha.stdout.strip(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--agent_cpus", type=float, default=64.0)
    parser.add_argument("--allocation_interval", type=float, default=1.0)
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(trio.run(main, parser.parse_args()), indent=2))
