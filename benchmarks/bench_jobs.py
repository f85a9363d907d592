"""marathon-jobs: 1,000 jobs due at the same second, beside the lean null framework.

One master (``marathon-mesos-local --agents 0 --simulated-agents 200``) for both arms,
in the same run, one after the other:

* the *null framework* of ``bench_launch.py`` launches N tasks of 0.01 cpu / 1 MB: the
  bar (seconds from its SUBSCRIBE to the N-th TASK_RUNNING it sees);
* ``marathon-jobs --master URL`` (SQLite state, as a single instance runs) gets N jobs
  by ``POST /v1/scheduler/iso8601``, each ``R1/<T>/PT1M`` with the same 0.01 cpu / 1 MB
  and ``sleep 1000``, all due at the same second ``T`` (after the POSTs are done);
  measured: seconds from ``T`` until N of its tasks are TASK_RUNNING in the master's
  ``/master/state`` (polled every 0.25 s).

Every run is stored (SQLite, synchronous=FULL) when it comes due, again with its task id
before its launch, and when Mesos reports it running: the price of "every run accounted
for", which the null framework does not pay. Not a test.

Run: ``.venv/bin/python benchmarks/bench_jobs.py [--jobs 1000 --agents 200]``.

Figures, N = 1,000 on 200 simulated agents (2 cores shared with other sessions, load
average 1.8-3; compare the arms of one run: both vary by +-30 % between runs; the
poll adds up to 0.4 s)::

                                                   marathon-jobs   null    null/jobs
    one commit per STARTING/RUNNING update, acks
    awaited one by one, schedules parsed each tick     6.1 s        2.2 s    0.36
    updates stored in batches, acks in the
    background, schedules parsed once                  1.7-2.0 s    0.9 s    0.47-0.52
      the same, load average 6-7                       3.2 s        1.5 s    0.45

marathon-jobs CPU: 0.85-0.95 s for the 1,000 runs (the null framework 0.25 s); the
master's 0.9 s. Posting the 1,000 jobs took 2.9-3.5 s (one SQLite commit each; 21 s at
load average 7).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_launch import cpu_seconds, master, process

JOBS_CLI = Path(sys.executable).parent / "marathon-jobs"


def running_tasks(url: str, framework: str) -> int:
    state = httpx.get(f"{url}/master/state", timeout=30).json()
    return sum(
        1
        for f in state["frameworks"]
        if f["name"] == framework
        for t in f["tasks"]
        if t["state"] == "TASK_RUNNING"
    )


def jobs_arm(url: str, master_pid: int, jobs: int, tmp: Path, timeout: float) -> dict[str, Any]:
    argv = [str(JOBS_CLI), "--master", url, "--state_dir", str(tmp / "state"),
            "--http_port", "0", "--hostname", "127.0.0.1",
            "--mesos_framework_name", "bench-jobs"]  # fmt: skip
    listening = re.compile(r"API listening on (http://\S+)")
    with process(argv, listening, tmp / "jobs.log") as (pid, api), httpx.Client() as http:
        # Room for the POSTs (one SQLite commit each): 10-40 ms apiece, more under load.
        due = int(datetime.now(UTC).timestamp() + 5 + jobs * 0.05)
        when = datetime.fromtimestamp(due, UTC).isoformat().replace("+00:00", "Z")
        posted0 = time.perf_counter()
        for i in range(jobs):
            job = {"name": f"bench-{i}", "command": "sleep 1000", "cpus": 0.01, "mem": 1,
                   "disk": 0, "schedule": f"R1/{when}/PT1M", "epsilon": "PT10M"}  # fmt: skip
            http.post(f"{api}/v1/scheduler/iso8601", json=job, timeout=30).raise_for_status()
        posting = time.perf_counter() - posted0
        if time.time() > due:
            raise RuntimeError(f"posting {jobs} jobs took {posting:.1f} s: past the due time")
        c0, m0 = cpu_seconds(pid), cpu_seconds(master_pid)
        while time.time() < due:
            time.sleep(0.01)
        progress: list[tuple[float, int]] = []
        while True:
            count = running_tasks(url, "bench-jobs")
            progress.append((round(time.time() - due, 2), count))
            if count >= jobs or time.time() - due > timeout:
                break
            time.sleep(0.25)
        took = time.time() - due
        c1, m1 = cpu_seconds(pid), cpu_seconds(master_pid)
    return {"seconds": took, "cpu": c1 - c0, "master_cpu": m1 - m0, "running": count,
            "posting_seconds": round(posting, 2), "progress": progress}  # fmt: skip


def null_arm(url: str, master_pid: int, jobs: int) -> dict[str, Any]:
    m0 = cpu_seconds(master_pid)
    run = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "bench_launch.py"), "--null-framework",
         url, "--tasks", str(jobs)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(run.stdout)
    result["master_cpu"] = cpu_seconds(master_pid) - m0
    return result


def main(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-jobs-") as name:
            tmp = Path(name)
            with master(args, tmp, "master.log") as (master_pid, url):
                null = null_arm(url, master_pid, args.jobs)
                ours = jobs_arm(url, master_pid, args.jobs, tmp, args.timeout)
        result = {
            "jobs": args.jobs,
            "null_seconds": round(null["seconds"], 2),
            "jobs_seconds": round(ours["seconds"], 2),
            "ratio_null_over_jobs": round(null["seconds"] / ours["seconds"], 3),
            "jobs_running": ours["running"],
            "jobs_cpu_s": round(ours["cpu"], 2),
            "null_cpu_s": round(null["cpu"], 2),
            "master_cpu_s": {
                "null": round(null["master_cpu"], 2),
                "jobs": round(ours["master_cpu"], 2),
            },
            "posting_seconds": ours["posting_seconds"],
            "progress": ours["progress"] if args.progress else None,
        }
        print(json.dumps(result), file=sys.stderr)
        runs.append(result)
    return {
        "benchmark": "jobs due at once",
        "agents": args.agents,
        "runs": runs,
        "machine": {
            "python": platform.python_version(),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--agent-resources", help="Each simulated agent's (master default)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--progress", action="store_true")
    print(json.dumps(main(parser.parse_args()), indent=2))
