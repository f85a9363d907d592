"""Launch rate as users see it: tasks RUNNING per second for one app of N instances.

Three separate processes, as a user runs them: ``marathon-mesos-local --agents 0
--simulated-agents 200`` (a fresh master for every arm), and one of two frameworks:

* the *null framework* (``--null-framework``, below): the bar. As lean as we can write
  it: raw HTTP/1.1 on two sockets (the SUBSCRIBE stream, and one pipelined connection
  for every call), it fills each offer with as many 0.01 cpu / 1 MB tasks as fit,
  acknowledges every update, nothing else;
* ``marathon --master URL`` with its defaults (SQLite state, ``synchronous=FULL``),
  sent one app of N instances of 0.01 cpu / 1 MB, no ports, by ``POST /v2/apps``.

Reported per arm: tasks/s (from the start -- SUBSCRIBE for the null framework, the
POST for marathon -- to the N-th task RUNNING as the framework knows it: the null
framework's own update, marathon's ``tasksRunning`` from ``GET /v2/apps``, polled every
0.5 s: a poll costs marathon a few ms at N = 10,000), the ratio,
CPU seconds per 1,000 tasks of the framework and of the master, and how loaded the
machine was by everything else (busy cores from ``/proc/stat`` minus our processes).
``--call-path`` measures the ways to send calls instead. Not a test.

Run: ``.venv/bin/python benchmarks/bench_launch.py [--tasks 2000 10000 --agents 200
--repeat 2]`` (``--call-path``; ``--progress``; ``--py-spy PATH`` profiles marathon).

Figures (2 cores, shared with other sessions: "loaded" runs had 0.8-1.4 cores busy
besides this benchmark's processes, "idle" runs about none; rates vary by about
+-30 % from run to run, so compare arms within a run):

Call path (``--call-path``: 5,000 ACKNOWLEDGEs the master accepts and ignores; client
CPU per call, calls/s)::

    httpx AsyncClient, 32 concurrent (the client before)     ~2,000 us    210-440/s
    h11 on a trio stream, 1 connection, one call at a time     ~200 us  1,500-2,400/s
    h11 on trio streams, 4 connections                         ~190 us  1,750-4,700/s
    CallPipeline, 1 caller at a time                        135-200 us  1,200-3,000/s
    CallPipeline, 32 concurrent callers                     100-165 us  2,000-4,200/s
    MesosClient.call via Outbox.post (the scheduler's way)  135-220 us  1,500-3,900/s

Several connections hide round trips as pipelining does, but cost the client a
``send`` and a ``recv`` per call; pipelining on one connection writes the calls of a
round with one ``send`` and lets the master read many per ``recv``, and is the
cheapest. Chosen: :mod:`marathon_core.mesos.pipeline`.

Launch (tasks/s of marathon vs the null framework; marathon's CPU s per 1,000 tasks;
the ratio)::

    before (httpx; a write rewrote the whole app)
      idle    N=2,000:   145/s vs 1,394/s   7.6 s   0.10
      idle    N=10,000:   60/s vs 1,457/s  19.5 s   0.04
      loaded  N=2,000:    30/s vs   731/s  17.2 s   0.04
      loaded  N=10,000:  4,496 of 10,000 RUNNING after 600 s (~7.5/s), not finished
    after the fast call path and storage (tracker followers still rescanned the app)
      idle    N=2,000:   640-770/s vs 1,430-1,490/s   1.1-1.3 s   0.43-0.54
      idle    N=10,000:  460-540/s vs 1,640-1,800/s   1.8-2.1 s   0.28-0.30
      loaded  N=2,000:   400-550/s vs   680-1,300/s   0.9-1.4 s   0.34-0.59
      loaded  N=10,000:  240-370/s vs   690-1,250/s   1.3-2.4 s   0.27-0.40
    after followers pay for what changed (health monitor, scale step; c4316d4)
      loaded  N=2,000:   420-620/s vs   880-1,020/s   1.0-1.1 s   0.48-0.60
      loaded  N=10,000:  375-445/s vs   850-980/s     1.2-1.5 s   0.38-0.53
    and the launcher deciding once per run of one app version (4090618)
      near idle N=2,000:  740-750/s vs 1,200-1,260/s   1.1 s       0.59-0.63
      near idle N=10,000: 680-690/s vs 1,230/s         1.3 s       0.55-0.56
    2026-12-03 evening, near idle (0.1-0.5 other cores), after the storage format 4,
    memory and reconciliation changes (287209c), and main (7e434a6) alternating
      287209c   N=2,000:   636/s vs 1,325/s            1.3 s       0.48
      287209c   N=10,000:  431/s vs 1,043/s            2.1 s       0.41
      7e434a6   N=10,000:  496/s vs 1,593/s            1.9 s       0.31
      287209c   N=10,000:  465/s vs 1,453/s            2.0 s       0.32
    so no change from those, but below the earlier near-idle runs (same code paths):
    the null framework ran faster this time, and marathon spent 2 CPU s per 1,000
    tasks instead of 1.3. The largest cost left at N = 10,000 is the deployment's
    scale step, which lists the app's instances for its progress record after every
    instance change (27-34 % of marathon's samples in a profile of the 100,000-instance
    memory run): not yet fixed.

("loaded": 0.7-1.1 other cores busy; "near idle": 0.1-0.3.) The health monitor and
the deployment's scale step used to rescan every instance of the app after each
tracker change (~20 % and ~16 % of marathon at N = 10,000); they now read what
changed (the tracker's ``InstanceFeed`` and per-app ``InstanceCounts``), and left
the profile. What remains at N = 10,000: handling status updates and offers (~35 %),
SQLite commits on worker threads (~12 %), the call pipeline and the subscription
stream (~15 %). The master was not the limit: it spent 0.8-1.1 CPU s per 1,000
tasks and kept up with the null framework at up to 1,800 tasks/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

CPUS, MEM = 0.01, 1.0
APP_ID = "/bench/launch"
SCHEDULER = "/api/v1/scheduler"
#: Seconds between two looks at marathon's ``tasksRunning``.
POLL = float(os.environ.get("BENCH_LAUNCH_POLL", "0.5"))
TICK = os.sysconf("SC_CLK_TCK")
MASTER_CLI = Path(sys.executable).parent / "marathon-mesos-local"

# -- the null framework ---------------------------------------------------------------


class _Pipe:
    """Calls pipelined on one keep-alive connection: writes batched, answers counted."""

    def __init__(self, stream: trio.SocketStream, head: bytes) -> None:
        self.stream = stream
        self.head = head
        self.pending = bytearray()
        self.ready = trio.Event()
        self.sent = 0
        self.answered = 0
        self.refused: list[bytes] = []

    def post(self, body: bytes) -> None:
        self.pending += self.head + b"%d\r\n\r\n" % len(body) + body
        self.sent += 1
        self.ready.set()

    async def write(self) -> None:
        while True:
            await self.ready.wait()
            self.ready = trio.Event()
            data, self.pending = bytes(self.pending), bytearray()
            await self.stream.send_all(data)

    async def read(self) -> None:
        buffer = bytearray()
        while True:
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                buffer += await self.stream.receive_some(65536)
            head = bytes(buffer[:end])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
            while len(buffer) < end + 4 + length:
                buffer += await self.stream.receive_some(65536)
            if not head.startswith(b"HTTP/1.1 202"):
                self.refused.append(
                    head.split(b"\r\n")[0] + bytes(buffer[end + 4 : end + 4 + length])
                )
            del buffer[: end + 4 + length]
            self.answered += 1


def _records(stream: trio.SocketStream, buffer: bytearray) -> Any:
    """RecordIO records of a chunked response body (``buffer`` holds what followed the head)."""

    async def records() -> Any:
        body = bytearray()
        while True:
            while (eol := buffer.find(b"\r\n")) < 0 or len(buffer) < eol + 2 + int(
                buffer[:eol], 16
            ) + 2:
                buffer.extend(await stream.receive_some(65536))
            size = int(buffer[:eol], 16)
            body += buffer[eol + 2 : eol + 2 + size]
            del buffer[: eol + 2 + size + 2]
            while (nl := body.find(b"\n")) >= 0 and len(body) >= nl + 1 + int(body[:nl]):
                length = int(body[:nl])
                yield json.loads(body[nl + 1 : nl + 1 + length])
                del body[: nl + 1 + length]

    return records()


async def null_framework(url: str, tasks: int) -> dict[str, Any]:
    """Launch ``tasks`` tasks; report seconds and CPU seconds until all are RUNNING."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5050
    cpu0, t0 = time.process_time(), time.perf_counter()
    info = {
        "user": "root",
        "name": "null",
        "roles": ["*"],
        "capabilities": [{"type": "MULTI_ROLE"}],
    }
    body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}).encode()
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(
        b"POST /api/v1/scheduler HTTP/1.1\r\nHost: m\r\nContent-Type: application/json\r\n"
        b"Accept: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    buffer = bytearray()
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        buffer += await stream.receive_some(65536)
    head = bytes(buffer[:end])
    del buffer[: end + 4]
    stream_id = re.search(rb"(?i)mesos-stream-id: *(\S+)", head)[1]  # type: ignore[index]
    pipe = _Pipe(
        await trio.open_tcp_stream(host, port),
        b"POST /api/v1/scheduler HTTP/1.1\r\nHost: m\r\nContent-Type: application/json\r\n"
        b"Mesos-Stream-Id: " + stream_id + b"\r\nContent-Length: ",
    )
    framework: dict[str, str] = {}
    launched = running = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pipe.write)
        nursery.start_soon(pipe.read)
        async for event in _records(stream, buffer):
            kind = event["type"]
            if kind == "UPDATE":
                status = event["update"]["status"]
                if status["state"] == "TASK_RUNNING":
                    running += 1
                if "uuid" in status:
                    ack = {"agent_id": status["agent_id"], "task_id": status["task_id"],
                           "uuid": status["uuid"]}  # fmt: skip
                    call = {"type": "ACKNOWLEDGE", "framework_id": framework, "acknowledge": ack}
                    pipe.post(json.dumps(call).encode())
                if running >= tasks:
                    break
            elif kind == "OFFERS":
                for offer in event["offers"]["offers"]:
                    free = {r["name"]: r["scalar"]["value"] for r in offer["resources"]
                            if "scalar" in r}  # fmt: skip
                    fit = min(
                        int(free.get("cpus", 0) * 1000 + 1e-6) // int(CPUS * 1000),
                        int(free.get("mem", 0) / MEM),
                        tasks - launched,
                    )
                    role = offer.get("allocation_info", {}).get("role", "*")
                    resources = [
                        {"name": n, "type": "SCALAR", "scalar": {"value": v}, "role": "*",
                         "allocation_info": {"role": role}}
                        for n, v in (("cpus", CPUS), ("mem", MEM))
                    ]  # fmt: skip
                    infos = [
                        {"name": "null", "task_id": {"value": f"null.{launched + i}"},
                         "agent_id": offer["agent_id"], "resources": resources,
                         "command": {"shell": True, "value": "sleep 1000"}}
                        for i in range(fit)
                    ]  # fmt: skip
                    launched += fit
                    offers = [offer["id"]]
                    if infos:
                        launch = {"type": "LAUNCH", "launch": {"task_infos": infos}}
                        accept = {"offer_ids": offers, "operations": [launch]}
                        call = {"type": "ACCEPT", "framework_id": framework, "accept": accept}
                    else:
                        decline = {"offer_ids": offers, "filters": {"refuse_seconds": 120.0}}
                        call = {"type": "DECLINE", "framework_id": framework, "decline": decline}
                    pipe.post(json.dumps(call).encode())
            elif kind == "SUBSCRIBED":
                framework.update(event["subscribed"]["framework_id"])
        took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        nursery.cancel_scope.cancel()
    return {"seconds": took, "cpu": cpu, "calls": pipe.sent, "refused": len(pipe.refused),
            "first_refusal": pipe.refused[0].decode()[:300] if pipe.refused else None}  # fmt: skip


# -- the call path --------------------------------------------------------------------

#: An ACKNOWLEDGE the master takes and ignores (no such agent): a real call's size and checks.
_ACK = {"type": "ACKNOWLEDGE", "acknowledge": {"agent_id": {"value": "S-none"},
        "task_id": {"value": "bench.1"}, "uuid": "q83vEjRWeJCrze8SNFZ4kA=="}}  # fmt: skip


async def _concurrently(calls: int, width: int, send: Any) -> None:
    left = calls

    async def worker(index: int) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await send(index)

    async with trio.open_nursery() as nursery:
        for index in range(width):
            nursery.start_soon(worker, index)


async def _h11_call(stream: trio.SocketStream, host: str, body: bytes, headers: Any) -> int:
    import h11

    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="POST",
        target=SCHEDULER,
        headers=[("Host", host), ("Content-Length", str(len(body))), *headers],
    )
    parts = (conn.send(request), conn.send(h11.Data(data=body)), conn.send(h11.EndOfMessage()))
    await stream.send_all(b"".join(p or b"" for p in parts))
    status = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.EndOfMessage):
            return status


async def call_paths(url: str, calls: int) -> list[dict[str, Any]]:
    """Client CPU per call and calls/s of each way to send calls, against one master."""
    from marathon_core.config import Config
    from marathon_core.mesos import calls as mesos_calls
    from marathon_core.mesos.client import MesosClient
    from marathon_core.scheduler.outbox import MAX_CALLS_IN_FLIGHT

    send, receive = trio.open_memory_channel[Any](10_000)
    config = Config(master=url, hostname="localhost")

    async def no_id() -> None:
        return None

    async def keep_id(framework_id: str) -> None:
        return None

    client = MesosClient(
        url, framework_info=lambda fid: mesos_calls.framework_info(config),
        load_framework_id=no_id, store_framework_id=keep_id, events=send,
    )  # fmt: skip
    results: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        nursery.start_soon(_drain, receive)
        assert client.stream_id is not None and client.framework_id is not None
        body = json.dumps({**_ACK, "framework_id": {"value": client.framework_id}}).encode()
        headers = [("Content-Type", "application/json"), ("Mesos-Stream-Id", client.stream_id)]
        width = MAX_CALLS_IN_FLIGHT
        ways = [
            (f"httpx, {width} concurrent (before)", _via_httpx(url, body, headers, width)),
            *[(f"h11 on trio, {n} connection(s), one call each at a time",
               _via_h11(url, body, headers, n)) for n in (1, 4)],
            *[(f"CallPipeline, {n} concurrent", _via_pipeline(url, body, headers, n, nursery))
              for n in (1, width)],
            ("MesosClient.call through Outbox.post (the scheduler's path)", _via_outbox(client)),
        ]  # fmt: skip
        for name, way in ways:
            cpu0, t0 = time.process_time(), time.perf_counter()
            await way(calls)
            cpu, took = time.process_time() - cpu0, time.perf_counter() - t0
            results.append({"path": name, "calls_per_s": round(calls / took),
                            "client_cpu_us_per_call": round(cpu / calls * 1e6, 1)})  # fmt: skip
            print(json.dumps(results[-1]), file=sys.stderr)
        nursery.cancel_scope.cancel()
    return results


Headers = list[tuple[str, str]]


def _via_httpx(url: str, body: bytes, headers: Headers, width: int) -> Any:
    async def run(calls: int) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:

            async def one(_: int) -> None:
                response = await http.post(url + SCHEDULER, content=body, headers=dict(headers))
                response.raise_for_status()

            await _concurrently(calls, width, one)

    return run


def _via_h11(url: str, body: bytes, headers: Headers, connections: int) -> Any:
    async def run(calls: int) -> None:
        parts = urlsplit(url)
        streams = [await trio.open_tcp_stream(parts.hostname or "", parts.port or 80)
                   for _ in range(connections)]  # fmt: skip

        async def one(index: int) -> None:
            assert await _h11_call(streams[index], parts.netloc, body, headers) == 202

        await _concurrently(calls, connections, one)
        for stream in streams:
            await stream.aclose()

    return run


def _via_pipeline(url: str, body: bytes, headers: Headers, width: int, nursery: Any) -> Any:
    from marathon_core.mesos.pipeline import CallPipeline

    raw = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers)

    async def run(calls: int) -> None:
        pipeline = CallPipeline(url, nursery)

        async def one(_: int) -> None:
            assert (await pipeline.post(SCHEDULER, raw, body)).status == 202

        await _concurrently(calls, width, one)
        await pipeline.aclose()

    return run


def _via_outbox(client: Any) -> Any:
    from marathon_core.scheduler.outbox import Background, Outbox

    async def run(calls: int) -> None:
        async with trio.open_nursery() as nursery:
            background = Background()
            background.attach(nursery)
            outbox = Outbox(client, background)
            for _ in range(calls):
                outbox.post(dict(_ACK))

    return run


async def _drain(receive: Any) -> None:
    async for _ in receive:
        pass


# -- the harness ----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICK


@contextmanager
def process(argv: list[str], listening: re.Pattern[str], log: Path) -> Iterator[tuple[int, str]]:
    """Run ``argv`` (log to ``log``) until a log line matches ``listening``; yield (pid, url)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (match := listening.search(log.read_text(errors="replace"))):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield proc.pid, match.group(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def master(args: argparse.Namespace, tmp: Path, name: str) -> Any:
    argv = [str(MASTER_CLI), "--port", "0", "--agents", "0", "--simulated-agents",
            str(args.agents), "--log_level", "WARNING"]  # fmt: skip
    if args.agent_resources:
        argv += ["--agent-resources", args.agent_resources]
    return process(argv, re.compile(r"(?:master|mesos-local:) .*?(http://\S+)"), tmp / name)


def null_arm(args: argparse.Namespace, tasks: int, tmp: Path) -> dict[str, Any]:
    with master(args, tmp, "master-null.log") as (master_pid, url):
        m0, b0, w0 = cpu_seconds(master_pid), machine_busy(), time.perf_counter()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = subprocess.run(
            [sys.executable, __file__, "--null-framework", url, "--tasks", str(tasks)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        m1, b1, w1 = cpu_seconds(master_pid), machine_busy(), time.perf_counter()
    result = json.loads(run.stdout)
    child = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    other = (b1 - b0) - (m1 - m0) - child
    return {**result, "master_cpu": m1 - m0, "other_load": other / (w1 - w0)}


def marathon_arm(args: argparse.Namespace, tasks: int, tmp: Path) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(dir=tmp))
    with master(args, tmp, "master-marathon.log") as (master_pid, url):
        argv = [sys.executable, "-m", "marathon_core.cli", "--master", url, "--http_port", "0",
                "--http_address", "127.0.0.1", "--hostname", "localhost",
                "--state_dir", str(state), *args.marathon_arg]  # fmt: skip
        listening = re.compile(r"REST API listening on (http://\S+)")
        with process(argv, listening, tmp / "marathon.log") as (pid, api), httpx.Client() as http:
            deadline = time.monotonic() + 60
            while not http.get(f"{api}/v2/info").json().get("frameworkId"):
                if time.monotonic() > deadline:
                    raise RuntimeError("marathon did not subscribe")
                time.sleep(0.1)
            app = {"id": APP_ID, "cmd": "sleep 1000", "cpus": CPUS, "mem": MEM,
                   "instances": tasks, "portDefinitions": []}  # fmt: skip
            c0, m0, b0 = cpu_seconds(pid), cpu_seconds(master_pid), machine_busy()
            t0 = time.perf_counter()
            spy = args.py_spy and subprocess.Popen(
                [args.py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
                 "--output", str(Path(args.py_spy_output or "launch").with_suffix(f".{tasks}.txt")),
                 *args.py_spy_arg],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            http.post(f"{api}/v2/apps", json=app).raise_for_status()
            progress: list[tuple[float, int]] = []
            while True:
                (running,) = http.get(f"{api}/v2/apps", timeout=30).json()["apps"]  # no tasks
                progress.append((round(time.perf_counter() - t0, 2), running["tasksRunning"]))
                if running["tasksRunning"] >= tasks or time.perf_counter() - t0 > args.timeout:
                    break
                time.sleep(POLL)
            took = time.perf_counter() - t0
            c1, m1, b1 = cpu_seconds(pid), cpu_seconds(master_pid), machine_busy()
            if spy:
                spy.send_signal(signal.SIGINT)
                spy.wait()
    other = (b1 - b0) - (c1 - c0) - (m1 - m0)
    return {"seconds": took, "cpu": c1 - c0, "master_cpu": m1 - m0, "other_load": other / took,
            "running": running["tasksRunning"], "progress": progress}  # fmt: skip


def figures(tasks: int, arm: dict[str, Any]) -> dict[str, Any]:
    """Rates of one arm; one that timed out is rated by the tasks it got running."""
    tasks = arm.get("running", tasks)
    return {
        "tasks_per_s": round(tasks / arm["seconds"], 1),
        "cpu_s_per_1000": round(arm["cpu"] / tasks * 1000, 3),
        "master_cpu_s_per_1000": round(arm["master_cpu"] / tasks * 1000, 3),
        # Cores kept busy by everything but this arm's processes (the harness included).
        "other_load_cores": round(arm["other_load"], 2),
    }


def run_size(args: argparse.Namespace, tasks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
        null = null_arm(args, tasks, Path(tmp))
        ours = marathon_arm(args, tasks, Path(tmp))
    result = {
        "tasks": tasks,
        "null": figures(tasks, null),
        "marathon": figures(tasks, ours),
        "ratio": round(ours["running"] / ours["seconds"] / (tasks / null["seconds"]), 3),
        "marathon_timed_out": ours["running"] < tasks,
        "null_refused_calls": null["refused"],
        # (seconds since the POST, tasksRunning) as polled
        "marathon_progress": ours["progress"] if args.progress else None,
    }
    print(json.dumps(result), file=sys.stderr)
    return result


def main(args: argparse.Namespace) -> dict[str, Any]:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    runs = [run_size(args, n) for _ in range(args.repeat) for n in args.tasks]
    return {
        "benchmark": "launch",
        "agents": args.agents,
        "runs": runs,
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        },
        "git": sha.stdout.strip(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2000, 10_000])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--agent-resources", help="Each simulated agent's (master default)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--marathon-arg", action="append", default=[], help="Extra flag")
    parser.add_argument("--progress", action="store_true", help="Report marathon's progress")
    parser.add_argument("--call-path", action="store_true", help="Measure the ways to send calls")
    parser.add_argument("--calls", type=int, default=5000, help="Calls per way (--call-path)")
    parser.add_argument("--py-spy", metavar="PATH", help="Profile marathon with this py-spy")
    parser.add_argument("--py-spy-arg", action="append", default=[], help="e.g. --gil")
    parser.add_argument("--py-spy-output", metavar="STEM", help="Where (STEM.N.txt, collapsed)")
    parser.add_argument("--null-framework", metavar="URL", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.call_path:
        with (
            tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp,
            master(parsed, Path(tmp), "master.log") as (_, url),
        ):
            found = trio.run(call_paths, url, parsed.calls)
        report = {"benchmark": "call path", "calls": parsed.calls, "paths": found}
        print(json.dumps(report, indent=2))
    elif parsed.null_framework:
        print(json.dumps(trio.run(null_framework, parsed.null_framework, parsed.tasks[0])))
    else:
        print(json.dumps(main(parsed), indent=2))
