"""Event delivery during a big launch: events/s published, and how far behind a reader is.

Run: ``.venv/bin/python benchmarks/bench_event_burst.py [--instances 10000 --agents 200]``.

Three processes, as users run them: ``marathon-mesos-local`` with simulated agents and
no real one, ``marathon --master <it>``, and this one, which follows ``/v2/events`` as
fast as loopback allows (one streaming request, lines parsed as they come), receives
the HTTP callbacks (a minimal HTTP/1.1 server answering 200 at once) and posts one app
of N instances (0.01 cpu, 1 MB, no ports, ``sleep 1000``). Reported: the launch time
(POST to all RUNNING, seen by polling ``/v2/apps``), events published per second over
it (from the stream's event ids), the reader's lag (its arrival time minus the event's
``timestamp``, which has millisecond resolution) at p50/p99/max, whether the reader was
dropped, what the callback receiver got, and marathon's CPU seconds.

Not a test: the numbers depend on the machine (the regression test is
``plugins/rest/tests/test_event_burst.py``).

Figures (2 shared cores, load average 2-5 from other work, 200 simulated agents):

==========================  =============================  ===============================
                            before (lead 8d9245c), 2,000   after, 10,000 instances
==========================  =============================  ===============================
launch                      27.5 s (73 tasks/s)            544.5 s (18.4 tasks/s), marathon
                                                           CPU 374 s (launch speed is a
                                                           separate part of issue 12)
events published            ~15,400 (7.7 per instance)     95,769: 176/s on average, 10,005
                                                           in the peak second (the
                                                           scale-up: one per new instance,
                                                           no checkpoint in between)
/v2/events reader           dropped 1 s after the POST     all 95,769, never dropped; lag
                            ("more than 1024 events were   p50 61 ms, p99 539 ms, max 674 ms
                            left unread")                  (turns of marathon's event loop)
HTTP callback receiver      1,874 events; the dispatcher   all 95,769 (+2 of the
                            resynced, the callback         subscription), no resync
                            dropped 6,000+
==========================  =============================  ===============================

After the launch work of the same issue (pipelined Mesos calls, group commits,
followers that cost what changed), 10,000 instances on a nearly idle machine, two runs:
launch 24.1 s (415 tasks/s, marathon CPU 22.8 s); 60,008 events, 2,493/s on average and
13,032 in the peak second; the reader got all of them and was never dropped, lag p50
25 ms, p99 296 ms and 618 ms, max 316 ms and 632 ms; the callback receiver had 60,012
(all, and 4 of its subscription) in one run and 59,740 when counted in the other; no
resync or drop in either. Fewer events than
above: TASK_RUNNING no longer arrives several times per task (acknowledgements keep up).

An earlier 10,000 run with 8 callback senders instead of 32 saw the callback resync once
(91,869 received) and a reader lag p99 of 2.2 s during a slower, more loaded launch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import trio

CLI = Path(sys.executable).parent / "marathon-mesos-local"
TICK = os.sysconf("SC_CLK_TCK")
_TIMESTAMP = re.compile(rb'"timestamp":"([^"]+)"')


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def start(argv: list[str], log: Path, listening: str) -> tuple[trio.Process, str]:
    """Start ``argv`` with its output in ``log``; its URL once the log shows it."""
    with open(log, "wb") as out:
        process = await trio.lowlevel.open_process(argv, stdout=out, stderr=subprocess.STDOUT)
    with trio.fail_after(60):
        while not (match := re.search(listening, log.read_text())):
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited early; see {log}")
            await trio.sleep(0.05)
    return process, match.group(1)


class Receiver:
    """An HTTP callback endpoint: counts the JSON bodies POSTed to it, answers 200."""

    def __init__(self) -> None:
        self.events: list[bytes] = []

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        task_status.started(f"http://127.0.0.1:{port}/hook")
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError):  # the client reset it
            await self._requests(stream)

    async def _requests(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        async with stream:
            while True:
                while (end := buffer.find(b"\r\n\r\n")) < 0:
                    if not (chunk := await stream.receive_some(65536)):
                        return
                    buffer += chunk
                head = bytes(buffer[:end]).lower()
                match = re.search(rb"content-length:\s*(\d+)", head)
                length = int(match.group(1)) if match else 0
                del buffer[: end + 4]
                while len(buffer) < length:
                    if not (chunk := await stream.receive_some(65536)):
                        return
                    buffer += chunk
                self.events.append(bytes(buffer[:length]))
                del buffer[:length]
                await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


class Reader:
    """A ``/v2/events`` client that reads as fast as it can and notes each event's lag."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        #: Events published in each second (by their timestamps).
        self.per_second: dict[int, int] = {}
        self.ids: list[int] = []
        self.types: dict[str, int] = {}
        self.dropped: str | None = None
        self.connected = trio.Event()

    async def follow(self, url: str) -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=None) as client,
                client.stream("GET", f"{url}/v2/events") as response,
            ):
                self.connected.set()
                pending = b""
                async for chunk in response.aiter_bytes():
                    arrived = time.time()
                    pending += chunk
                    *blocks, pending = pending.split(b"\n\n")
                    for block in blocks:
                        self._block(block, arrived)
        except httpx.HTTPError as exc:
            self.dropped = self.dropped or f"{type(exc).__name__}: {exc}"
        self.dropped = self.dropped or "the stream ended"

    def _block(self, block: bytes, arrived: float) -> None:
        if block.startswith(b": disconnected"):
            self.dropped = block.decode()
            return
        if not block.startswith(b"id: "):
            return
        event_id, event_type, data = block.split(b"\n", 2)
        self.ids.append(int(event_id[4:]))
        kind = event_type[7:].decode()
        self.types[kind] = self.types.get(kind, 0) + 1
        if match := _TIMESTAMP.search(data):
            stamp = datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00"))
            self.lags.append(arrived - stamp.timestamp())
            second = int(stamp.timestamp())
            self.per_second[second] = self.per_second.get(second, 0) + 1


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def run(instances: int, agents: int, tmp: Path, timeout: float) -> dict[str, object]:
    master, master_url = await start(
        [str(CLI), "--port", "0", "--agents", "0", "--simulated-agents", str(agents),
         "--log_level", "WARNING"],
        tmp / "master.log", r"master (http://\S+) with",
    )  # fmt: skip
    marathon, url = await start(
        [sys.executable, "-m", "marathon_core.cli", "--master", master_url,
         "--http_port", "0", "--http_address", "127.0.0.1", "--state_dir", str(tmp / "state")],
        tmp / "marathon.log", r"REST API listening on (http://\S+)",
    )  # fmt: skip
    receiver, reader = Receiver(), Reader()
    try:
        async with (
            trio.open_nursery() as nursery,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            hook = await nursery.start(receiver.serve)
            (await client.post(f"/v2/eventSubscriptions?callbackUrl={hook}")).raise_for_status()
            nursery.start_soon(reader.follow, url)
            await reader.connected.wait()
            await trio.sleep(0.5)
            first_id = reader.ids[-1] if reader.ids else 0
            cpu0, started = cpu_seconds(marathon.pid), time.perf_counter()
            app = {"id": "/burst", "cmd": "sleep 1000", "cpus": 0.01, "mem": 1,
                   "instances": instances, "portDefinitions": []}  # fmt: skip
            (await client.post("/v2/apps", json=app)).raise_for_status()
            running = 0
            with trio.move_on_after(timeout):
                while running < instances and marathon.poll() is None:
                    await trio.sleep(1)
                    with trio.move_on_after(10):
                        body = (await client.get("/v2/apps/burst")).json()
                        running = body["app"]["tasksRunning"]
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(marathon.pid) - cpu0 if marathon.poll() is None else float("nan")
            await trio.sleep(3)  # the reader and the callbacks catch up
            gauges = (await client.get("/metrics")).json()["gauges"]
            nursery.cancel_scope.cancel()
    finally:
        alive = marathon.poll() is None
        for process in (marathon, master):
            process.kill()
            await process.wait()
    published = [i for i in reader.ids if i > first_id]
    return {
        "instances": instances,
        "running": running,
        "launch_seconds": round(elapsed, 1),
        "tasks_per_second": round(running / elapsed, 1),
        "marathon_alive": alive,
        "marathon_cpu_seconds": round(cpu, 1),
        "events_published": (max(published) - first_id) if published else 0,
        "events_per_second": round(((max(published) - first_id) if published else 0) / elapsed),
        "events_per_second_peak": max(reader.per_second.values(), default=0),
        "reader_events": len(published),
        "reader_dropped": reader.dropped,
        "reader_lag_ms": {
            "p50": round(percentile(reader.lags, 0.5) * 1000, 1),
            "p99": round(percentile(reader.lags, 0.99) * 1000, 1),
            "max": round(max(reader.lags, default=0) * 1000, 1),
        },
        "reader_types": reader.types,
        "callback_events": len(receiver.events),
        "callback_last": json.loads(receiver.events[-1])["eventType"] if receiver.events else None,
        "event_gauges": {k: v["value"] for k, v in gauges.items() if ".events." in k},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-event-burst-") as tmp:
        result = trio.run(run, args.instances, args.agents, Path(tmp), args.timeout)
        print(json.dumps(result, indent=2))
        if not result["marathon_alive"] or result["reader_dropped"]:
            print(Path(tmp, "marathon.log").read_text()[-4000:], file=sys.stderr)


if __name__ == "__main__":
    main()
