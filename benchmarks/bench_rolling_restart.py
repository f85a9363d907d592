"""A rolling restart of N instances, beside the null framework launching N tasks.

Three processes on one master, in one run: ``marathon-mesos-local --agents 0
--simulated-agents 200``; the null framework of :mod:`bench_launch` (raw HTTP, fills
offers with 0.01 cpu / 1 MB tasks, acknowledges, nothing else) launches N tasks and
exits; then ``marathon --master URL`` (defaults: SQLite state) gets one app of N such
instances, waits until all run, and is asked ``POST /v2/apps/{id}/restart``.

Reported: the null framework's tasks/s (the bar: how fast this master starts tasks
for anybody), marathon's launch of N (tasks/s), and the restart: seconds from the
POST until the deployment is gone and N tasks of the new version run, the replaced
tasks per second (each replacement is a launch and a kill), marathon's CPU seconds
per 1,000 replacements, and how loaded the machine was by everything else. The
restart uses the app's ``upgradeStrategy`` (``--minimum``/``--over``, Marathon's
defaults 1.0/1.0: start all N new ones, then kill the old). Not a test.

Run: ``.venv/bin/python benchmarks/bench_rolling_restart.py [--tasks 1000
--minimum 0.5 --over 0.2]``.

Figures (2 cores shared with other sessions, 0.5-0.9 other cores busy; 200 simulated
agents; ``GET`` polled every 0.5 s, so times are up to 0.5 s long)::

    N=1,000  strategy   null launch   marathon launch   restart         marathon CPU
             1.0/1.0    1,371/s       554/s             6.4 s (156/s)   2.0 s / 1,000
             0.5/0.2    1,026/s       610/s             8.9 s (113/s)   2.1 s / 1,000

A replacement is a launch and a kill (and its status updates), so its CPU is about
twice a launch's (``bench_launch``: 1.1-1.3 s per 1,000); the restart takes 0.11 of
the null framework's launch rate. Not profiled further yet: the restart step lists
the app's instances at each look (O(N) per tracker change), where the scale step
reads counts.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import bench_launch

APP_ID = "/bench/rolling"


def null_launch(url: str, tasks: int) -> dict[str, Any]:
    """The null framework launching ``tasks`` on the master at ``url`` (its own process)."""
    run = subprocess.run(
        [sys.executable, bench_launch.__file__, "--null-framework", url, "--tasks", str(tasks)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def wait_until(http: httpx.Client, api: str, done: Any, timeout: float) -> float:
    """Seconds until ``done(app)`` holds for ``GET /v2/apps/{id}``."""
    t0 = time.perf_counter()
    while True:
        app = http.get(f"{api}/v2/apps{APP_ID}", timeout=30).json()["app"]
        if done(app):
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"timed out: {app['tasksRunning']} running, {app['deployments']}")
        time.sleep(bench_launch.POLL)


def run(args: argparse.Namespace) -> dict[str, Any]:
    tasks = args.tasks
    with tempfile.TemporaryDirectory(prefix="bench-rolling-") as tmp_name:
        tmp = Path(tmp_name)
        with bench_launch.master(args, tmp, "master.log") as (master_pid, url):
            null = null_launch(url, tasks)
            argv = [sys.executable, "-m", "marathon_core.cli", "--master", url, "--http_port",
                    "0", "--http_address", "127.0.0.1", "--hostname", "localhost",
                    "--state_dir", str(tmp / "state")]  # fmt: skip
            listening = re.compile(r"REST API listening on (http://\S+)")
            with (
                bench_launch.process(argv, listening, tmp / "marathon.log") as (pid, api),
                httpx.Client() as http,
            ):
                deadline = time.monotonic() + 60
                while not http.get(f"{api}/v2/info").json().get("frameworkId"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("marathon did not subscribe")
                    time.sleep(0.1)
                app = {
                    "id": APP_ID, "cmd": "sleep 1000", "cpus": bench_launch.CPUS,
                    "mem": bench_launch.MEM, "instances": tasks, "portDefinitions": [],
                    "upgradeStrategy": {"minimumHealthCapacity": args.minimum,
                                        "maximumOverCapacity": args.over},
                }  # fmt: skip
                t0 = time.perf_counter()
                http.post(f"{api}/v2/apps", json=app).raise_for_status()
                launched = wait_until(
                    http,
                    api,
                    lambda a: a["tasksRunning"] >= tasks and not a["deployments"],
                    args.timeout,
                )
                assert launched <= time.perf_counter() - t0
                before = http.get(f"{api}/v2/apps{APP_ID}").json()["app"]["version"]
                c0, m0, b0 = (
                    bench_launch.cpu_seconds(pid),
                    bench_launch.cpu_seconds(master_pid),
                    bench_launch.machine_busy(),
                )
                http.post(f"{api}/v2/apps{APP_ID}/restart").raise_for_status()

                def restarted(a: dict[str, Any]) -> bool:
                    return (
                        a["version"] != before
                        and not a["deployments"]
                        and a["tasksRunning"] >= tasks
                    )

                took = wait_until(http, api, restarted, args.timeout)
                c1, m1, b1 = (
                    bench_launch.cpu_seconds(pid),
                    bench_launch.cpu_seconds(master_pid),
                    bench_launch.machine_busy(),
                )
                final = http.get(f"{api}/v2/apps{APP_ID}/tasks", timeout=30).json()["tasks"]
                new_version = http.get(f"{api}/v2/apps{APP_ID}").json()["app"]["version"]
    other = (b1 - b0) - (c1 - c0) - (m1 - m0)
    return {
        "tasks": tasks,
        "strategy": [args.minimum, args.over],
        "null_launch_tasks_per_s": round(tasks / null["seconds"], 1),
        "marathon_launch_tasks_per_s": round(tasks / launched, 1),
        "restart_seconds": round(took, 2),
        "restart_replacements_per_s": round(tasks / took, 1),
        "restart_vs_null_launch": round((tasks / took) / (tasks / null["seconds"]), 3),
        "marathon_cpu_s_per_1000_replacements": round((c1 - c0) / tasks * 1000, 3),
        "master_cpu_s_per_1000_replacements": round((m1 - m0) / tasks * 1000, 3),
        "other_load_cores": round(other / took, 2),
        "all_new_version": all(t.get("version") == new_version for t in final),
        "final_tasks": len(final),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--agent-resources", help="Each simulated agent's (master default)")
    parser.add_argument("--minimum", type=float, default=1.0, help="minimumHealthCapacity")
    parser.add_argument("--over", type=float, default=1.0, help="maximumOverCapacity")
    parser.add_argument("--timeout", type=float, default=600.0)
    print(json.dumps(run(parser.parse_args()), indent=2))
