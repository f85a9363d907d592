"""Memory of marathon with many running instances: its RSS beside the bare records.

Separate processes, as ``bench_launch.py`` runs them: ``marathon-mesos-local --agents 0
--simulated-agents 200`` (agents big enough for 100,000 tasks of 0.01 cpu / 1 MB) and
``marathon --master URL`` with its defaults (SQLite state). The apps (10 of 10,000
instances by default, no ports) are posted one after another, each once the last
runs. Reported:

* marathon's RSS (``VmRSS``) once subscribed and idle, and once every instance runs
  (after a few seconds' rest), and its peak (``VmHWM``);
* the bare records, two ways: the bytes of the stored instance records (the values
  under ``instances/`` in the SQLite file: JSON members in length-prefixed frames),
  and the deep ``sys.getsizeof`` of the ``Instance`` objects decoded from them in
  this process (every object reached counted once; shared enum members included);
* RSS per instance and RSS over each size (whole RSS, and RSS minus the idle RSS);
* how long each app took to run, and the machine's load by others;
* then the same state loaded by a new marathon process (a new leader: every instance
  decoded from storage): its RSS once every instance is reported running, and how
  long that took.

The stored records are counted uncompressed (what they hold; SQLite keeps large
values zlib-compressed, ``stored_on_disk_mb``).

Run: ``.venv/bin/python benchmarks/bench_memory.py [--apps 10 --instances 10000]``.
Not a test.

Figures (2 cores shared with other sessions, load average 2-6), all 100,000
running, with the memory changes below and the master's reconciliation fix (see
the stall below), ``--reconciliation_interval 120000``, 2026-12-03::

    marathon RSS idle (subscribed, no apps)             62 MB
    RSS with 100,000 running (peak 262 MB)             251 MB   3.8x the stored records
    stored instance records (66.3 MB; on disk 2.3 MB)
    a new leader that loaded them (peak 394 MB)        299 MB   4.5x, all running in 18 s
    launch of the 10 apps                              667 s    (46-103 s per app)

RSS after each app of 10,000: 122, 152, 171, 183, 219, 214, 221, 246, 259, 268 MB.

Before that fix, runs side by side of base (lead 7e434a6) and the memory changes
(load average 6-11) did not finish: apps took 45-440 s each and from the eighth app
on both arms stalled. The cause was the embedded master, which counted the answers
to a RECONCILE (one per task, in one pass) as a slow subscriber's backlog: past
10,000 tasks every periodic reconciliation cut marathon's stream, and the
re-subscription's own reconciliation cut the next one (17 cuts). Those runs were
stopped at ~78,000 running (base, 675 MB) and ~89,500 (279 MB); the stored records
are 0.665 kB per instance. RSS of the launching process once each app of 10,000 ran
(MB)::

    running            10k   20k   30k   40k   50k   60k   70k   80k
    base               157   215   294   368   445   525   586     -
    after              121   149   178   205   227   241   240   246
    base / records    23.6  16.2  14.7  13.8  13.4  13.2  12.6     -
    after / records   18.2  11.2   8.9   7.7   6.8   6.0   5.2   4.6

(idle: 60 MB in both.) One app of 10,000, side by side (the same session): RSS 173
-> 131 MB; ``GET /v2/apps?embed=apps.tasks`` median of 10, 35 -> 17 ms, and
``GET /v2/apps/<id>`` (with its tasks) 44 -> 30 ms (both within the noise of the
load: not slower). The new leader was not measured again.

Earlier (lead 9c6d1dc, then the shared decoding, one after the other in one session):
launched 733 -> 753 MB (11.1x -> 11.4x), new leader 666 -> 426 MB (10.0x -> 6.4x).

What the launching process held beyond a new leader, by tracemalloc runs at 5,000
and 20,000 instances and ``sys._debugmallocstats``, and what changed:

* the REST plugin's encoded tasks (``marathon_rest/appinfo.py``), the most of it:
  orjson returns its output in the buffer it wrote it to, 4 kB for a task of ~425
  bytes, and each task of every app served was kept that way (~4 kB per instance),
  beside each app's entry with its tasks (their JSON again). What is kept is now
  copied to bytes of its own size, and kept only for the apps used last, up to
  ``TASK_CACHE_BYTES`` (32 MB) of JSON (or the one app just served, if larger);
* the encoded buckets ``InstanceRepository.change`` (now ``state/instances.py``)
  kept for every large app it wrote, the records' size again: it keeps where each
  instance is and the buckets' versions, holds only the buckets written last
  (``KEEP_BYTES``, 8 MB), and reads a bucket it does not hold when a change touches
  it;
* an ``AgentInfo`` (and a copy of the agent's attributes) per launch: the launcher
  shares one per agent while the agent stays the same.

Left alone: launch-time objects (pending Mesos calls, offers) and the allocator's
high-water mark after the launch (glibc's main heap: ~36 MB free but not returned at
20,000 instances), in files of other owners.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from bench_launch import cpu_seconds, machine_busy, master, process

CPUS, MEM = 0.01, 1.0
AGENT_RESOURCES = "cpus:10;mem:10240;disk:10000;ports:[31000-32000]"


def status_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def deep_size(root: Any) -> int:
    """``sys.getsizeof`` of everything reachable from ``root``, each object once."""
    seen: set[int] = set()
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, (str, bytes, int, float, type(None), enum.Enum)):
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif attrs.has(type(obj)):
            stack.extend(getattr(obj, f.name) for f in attrs.fields(type(obj)))
        elif hasattr(obj, "__dict__"):
            stack.append(vars(obj))
    return total


def running_of(http: httpx.Client, api: str) -> int:
    """Tasks running in all apps, as the API reports them (0 until it answers)."""
    try:
        response = http.get(f"{api}/v2/apps")
    except httpx.HTTPError:
        return 0
    if response.status_code != 200:
        return 0
    return sum(app["tasksRunning"] for app in response.json()["apps"])


def stored_records(db: Path) -> tuple[int, int, int]:
    """(bytes of the instance values, bytes they take compressed on disk, number of values).

    The records' own size is what they hold uncompressed: SQLite packs large values
    (``state/sqlite.py``), which would flatter the ratio of RSS to them.
    """
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT value, packing FROM kv WHERE key LIKE 'instances/%'")
        size = packed = count = 0
        for value, packing in rows:
            size += len(zlib.decompress(value)) if packing else len(value)
            packed += len(value)
            count += 1
    return size, packed, count


async def decoded_instances(db: Path) -> list[Any]:
    from marathon_core.state.sqlite import SqliteStorage
    from marathon_core.state.store import StateStore

    storage = await SqliteStorage.open(db)
    try:
        state = await StateStore.open(storage)
        return list(await state.instances.all())
    finally:
        await storage.aclose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp_name:
        tmp = Path(tmp_name)
        state = tmp / "state"
        with master(args, tmp, "master.log") as (master_pid, url):
            argv = [sys.executable, "-m", "marathon_core.cli", "--master", url, "--http_port",
                    "0", "--http_address", "127.0.0.1", "--hostname", "localhost",
                    "--state_dir", str(state)]  # fmt: skip
            listening = re.compile(r"REST API listening on (http://\S+)")
            with (
                process(argv, listening, tmp / "marathon.log") as (pid, api),
                httpx.Client(timeout=60) as http,
            ):
                deadline = time.monotonic() + 60
                while not http.get(f"{api}/v2/info").json().get("frameworkId"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("marathon did not subscribe")
                    time.sleep(0.1)
                time.sleep(2)
                idle = status_kb(pid)
                b0, w0 = machine_busy(), time.perf_counter()
                ours0 = cpu_seconds(pid) + cpu_seconds(master_pid)
                apps: list[dict[str, Any]] = []
                for n in range(args.apps):
                    app_id = f"/bench/memory/app-{n:02d}"
                    body = {"id": app_id, "cmd": "sleep 100000", "cpus": CPUS, "mem": MEM,
                            "instances": args.instances, "portDefinitions": []}  # fmt: skip
                    t0 = time.perf_counter()
                    http.post(f"{api}/v2/apps", json=body).raise_for_status()
                    while True:
                        got = http.get(f"{api}/v2/apps{app_id}").json()["app"]["tasksRunning"]
                        if got >= args.instances or time.perf_counter() - t0 > args.timeout:
                            break
                        time.sleep(1)
                    took = round(time.perf_counter() - t0, 1)
                    apps.append({"app": app_id, "running": got, "seconds": took,
                                 "rss_kb": status_kb(pid)["VmRSS"]})  # fmt: skip
                    print(json.dumps(apps[-1]), file=sys.stderr)
                    if got < args.instances:
                        break
                launched = time.perf_counter() - w0
                ours = cpu_seconds(pid) + cpu_seconds(master_pid) - ours0
                other = (machine_busy() - b0 - ours) / launched
                time.sleep(args.rest)
                full = status_kb(pid)
                running = sum(a["running"] for a in apps)
            # A new leader: the same state, every instance decoded from storage.
            with (
                process(argv, listening, tmp / "marathon-restarted.log") as (pid, api),
                httpx.Client(timeout=60) as http,
            ):
                t0 = time.perf_counter()
                while running_of(http, api) < running:
                    if time.perf_counter() - t0 > args.timeout:
                        raise RuntimeError("the restarted marathon did not load every instance")
                    time.sleep(1)
                reload_seconds = time.perf_counter() - t0
                time.sleep(args.rest)
                reloaded = status_kb(pid)
        db = next(state.glob("*.sqlite3"))
        stored, on_disk, values = stored_records(db)
        instances = trio.run(decoded_instances, db)
        decoded = deep_size(instances)
    rss = full["VmRSS"] * 1024
    grown = rss - idle["VmRSS"] * 1024
    return {
        "benchmark": "memory",
        "running": running,
        "decoded_instances": len(instances),
        "launch_seconds": round(launched, 1),
        "apps": apps,
        "rss_idle_mb": round(idle["VmRSS"] / 1024, 1),
        "rss_mb": round(rss / 2**20, 1),
        "peak_rss_mb": round(full["VmHWM"] / 1024, 1),
        "restarted_rss_mb": round(reloaded["VmRSS"] / 1024, 1),
        "restarted_peak_rss_mb": round(reloaded["VmHWM"] / 1024, 1),
        "restarted_load_seconds": round(reload_seconds, 1),
        "restarted_rss_over_stored": round(reloaded["VmRSS"] * 1024 / stored, 2),
        "rss_per_instance_bytes": round(rss / max(running, 1)),
        "stored_records_mb": round(stored / 2**20, 1),
        "stored_on_disk_mb": round(on_disk / 2**20, 1),
        "stored_values": values,
        "decoded_objects_mb": round(decoded / 2**20, 1),
        "rss_over_stored": round(rss / stored, 2),
        "rss_over_decoded": round(rss / decoded, 2),
        "grown_over_stored": round(grown / stored, 2),
        "grown_over_decoded": round(grown / decoded, 2),
        # Cores kept busy by everything but marathon and the master (harness included).
        "other_load_cores": round(other, 2),
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        },
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--instances", type=int, default=10_000, help="Per app")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--agent-resources", default=AGENT_RESOURCES)
    parser.add_argument("--timeout", type=float, default=900.0, help="Per app")
    parser.add_argument("--rest", type=float, default=5.0, help="Seconds before the last look")
    print(json.dumps(run(parser.parse_args()), indent=2))
