"""Leader-run HTTP health checks at scale: 10,000 checks every 10 s against local responders.

Run: ``.venv/bin/python benchmarks/bench_health_checks.py [--checks 10000 --interval 10]``.

Two processes, as users have them: the responders (the tasks: one process here,
serving ``200 ok`` and closing, on ``--checks`` listening sockets spread over
127.0.0.2-127.0.0.101, so every check has a port of its own), and this one, which
plays the leader: the real :class:`~marathon_core.leader.health.HealthMonitor` over a
real instance tracker of ``--checks`` Running instances (100 apps), probing with the
real ``marathon-healthchecks`` HTTP protocol (timeout 5 s, grace 300 s).

Reported, all from the same run:

- the baseline: the raw request rate of the same HTTP client (``HttpCheck.probe``, as
  many at once as the monitor allows: ``MAX_CONCURRENT_PROBES``) against the same
  responders, as fast as it goes, before and after the monitor runs (the machine is
  shared: the two tell how steady it was);
- the monitor's first round (a new leader probes every task at once), then, one
  interval after it (the backlog spread out), over ``--seconds``: checks
  per second sustained over ``--seconds`` next to the rate the schedule asks for
  (checks / interval) and to the baseline, the scheduling lag (when a probe is sent
  minus when it was due: ``intervalSeconds`` after the previous one started) at
  p50/p99/max, failed checks, and the CPU seconds of both processes per check.

Not a test: the numbers depend on the machine.

Figures (2 shared cores, load average 3-5 from other work):

========================  =====================  ======================  =====================
                          httpx client per       one connection, the     + a plain connect for
                          probe (1,000 checks    status line read by     addresses, no wake per
                          every 5 s)             hand (h11 at first)     probe (final)
========================  =====================  ======================  =====================
baseline raw rate         534 requests/s         858 requests/s          2,201 / 2,785 req/s
                                                                         (before / after)
sustained checks/s        200 of 200 wanted      778 of 1,000 wanted     995 of 1,000 wanted
                                                 (falls behind)          (0.40x the raw rate)
scheduling lag p50 / p99  1,233 / 3,090 ms       1,524 / 8,982 ms        5 / 2,249 ms (max
                          (all due together)                             2,509 ms)
leader CPU per check      1,291 us               657 us                  355 us (35% of a
                                                                         core at 1,000/s)
failed checks             0                      0                       0
========================  =====================  ======================  =====================

The first round (every task probed at once by a new leader, 256 at a time) took 9.9 s
in the final run. The remaining p99 lag comes in bursts of a second or two, when the
shared machine's other work takes the CPU (the responders' process and this one both
wait); the leader itself is at a third of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import trio

from marathon_core.contracts.health import HealthCheckProtocol, ProbeResult
from marathon_core.events import EventBus
from marathon_core.leader.health import MAX_CONCURRENT_PROBES, HealthMonitor
from marathon_core.model.app import AppDefinition, HealthCheck, PortDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId, Task, TaskId
from marathon_core.scheduler.tracker import InstanceTracker
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore
from marathon_healthchecks.protocols import HttpCheck

ADDRESSES = [f"127.0.0.{2 + i}" for i in range(100)]
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


# -- the responders (a process of their own) -----------------------------------------------


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(count: int) -> None:
    servers = []
    for i in range(count):
        server = await asyncio.start_server(_answer, ADDRESSES[i % len(ADDRESSES)], 0, backlog=512)
        servers.append(server)
    endpoints = [s.sockets[0].getsockname()[:2] for s in servers]
    print(json.dumps(endpoints), flush=True)
    await asyncio.Event().wait()


def responders(count: int) -> None:
    asyncio.run(_serve(count))


# -- the leader's side ---------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def cpu_of(pid: int) -> float:
    """User+system CPU seconds of a process (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def baseline(endpoints: list[tuple[str, int]], seconds: float) -> tuple[float, float]:
    """Requests/s of ``HttpCheck.probe`` flat out, ``MAX_CONCURRENT_PROBES`` at once; and
    its latency p99."""
    probe = HttpCheck("http")
    check = HealthCheck(protocol="HTTP", path="/", timeout_seconds=5)
    done = 0
    latencies: list[float] = []
    deadline = trio.current_time() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while trio.current_time() < deadline:
            host, port = endpoints[i % len(endpoints)]
            started = trio.current_time()
            result = await probe.probe(check, host=host, port=port, timeout=5)
            latencies.append(trio.current_time() - started)
            assert result == ProbeResult.healthy(), result
            done += 1
            i += MAX_CONCURRENT_PROBES

    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for k in range(MAX_CONCURRENT_PROBES):
            nursery.start_soon(worker, k)
    return done / (trio.current_time() - started), percentile(latencies, 0.99)


#: When the probe running in this trio task was due (set by the monitor's ``_probe``).
_due: contextvars.ContextVar[float] = contextvars.ContextVar("due")


class MeasuredMonitor(HealthMonitor):
    """The monitor, noting when each probe was due (a benchmark's hook, not an API)."""

    async def _probe(self, target: Any) -> None:
        _due.set(target.due)
        await super()._probe(target)


class Recorder:
    """Wraps the HTTP protocol: when each probe is sent, how late, and what it found."""

    def __init__(self) -> None:
        self.inner = HttpCheck("http")
        self.sent: list[tuple[float, float]] = []  # (when, lag)
        self.failures = 0

    @property
    def checker(self) -> Recorder:
        return self

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> list[Any]:
        return []

    async def probe(
        self, check: HealthCheck, *, host: str, port: int, timeout: float
    ) -> ProbeResult:
        now = trio.current_time()
        self.sent.append((now, now - _due.get(now)))
        result = await self.inner.probe(check, host=host, port=port, timeout=timeout)
        if result != ProbeResult.healthy():
            self.failures += 1
        return result


def cluster(
    endpoints: list[tuple[str, int]], interval: int
) -> tuple[list[AppDefinition], list[Instance]]:
    now = Timestamp.now()
    check = HealthCheck(
        protocol="HTTP",
        path="/",
        port_index=0,
        grace_period_seconds=300,
        interval_seconds=interval,
        timeout_seconds=5,
        max_consecutive_failures=3,
    )
    apps = [
        AppDefinition(
            PathId.parse(f"/bench/app{n}"),
            cmd="serve",
            port_definitions=(PortDefinition(port=0),),
            health_checks=(check,),
            version=now,
        )
        for n in range(100)
    ]
    instances = []
    for i, (host, port) in enumerate(endpoints):
        app = apps[i % len(apps)]
        iid = InstanceId.new(app.id)
        task = Task(
            TaskId.for_instance(iid),
            Condition.RUNNING,
            staged_at=now,
            started_at=now,
            host_ports=(port,),
            run_spec_version=now,
        )
        instances.append(
            Instance(
                iid,
                condition=Condition.RUNNING,
                agent=AgentInfo(host, f"agent-{host}"),
                tasks=(task,),
                run_spec_version=now,
            )
        )
    return apps, instances


async def main(args: argparse.Namespace) -> None:
    process = subprocess.Popen(
        [sys.executable, __file__, "--responders", str(args.checks)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        endpoints = [tuple(e) for e in json.loads(process.stdout.readline())]
        print(f"{len(endpoints)} responders on {len(ADDRESSES)} addresses (pid {process.pid})")

        raw, raw_p99 = await baseline(endpoints, args.baseline_seconds)  # type: ignore[arg-type]
        print(
            f"baseline: HttpCheck.probe flat out, {MAX_CONCURRENT_PROBES} at once: "
            f"{raw:,.0f} requests/s (latency p99 {raw_p99 * 1000:.0f} ms)"
        )

        apps, instances = cluster(endpoints, args.interval)  # type: ignore[arg-type]
        events = EventBus()
        tracker = InstanceTracker(
            await StateStore.open(MemoryStorage()), events, instances=instances, apps=apps
        )
        recorder = Recorder()
        protocols: dict[str, HealthCheckProtocol] = {"HTTP": recorder}

        async def refuse(_: Sequence[Instance]) -> None:
            raise AssertionError("a healthy task was to be killed")

        monitor = MeasuredMonitor(tracker, events, protocols, kill=refuse)
        async with trio.open_nursery() as nursery:
            started = trio.current_time()
            await nursery.start(monitor.run)
            # The first round: a new leader probes every task at once.
            while sum(1 for i in instances if monitor.is_healthy(i)) < len(instances):
                await trio.sleep(0.1)
            first_round = trio.current_time() - started
            await trio.sleep(args.interval)  # one more round: the backlog spreads out
            window_start = trio.current_time()
            cpu0, responder_cpu0 = own_cpu(), cpu_of(process.pid)
            await trio.sleep(args.seconds)
            window_end = trio.current_time()
            cpu, responder_cpu = own_cpu() - cpu0, cpu_of(process.pid) - responder_cpu0
            nursery.cancel_scope.cancel()
        raw_after, raw_p99_after = await baseline(endpoints, args.baseline_seconds)  # type: ignore[arg-type]
        print(
            f"baseline again, after the monitor: {raw_after:,.0f} requests/s "
            f"(latency p99 {raw_p99_after * 1000:.0f} ms)"
        )
        raw = (raw + raw_after) / 2
        in_window = [lag for when, lag in recorder.sent if window_start <= when < window_end]
        rate = len(in_window) / (window_end - window_start)
        wanted = args.checks / args.interval
        print(f"first round: all {len(instances):,} healthy {first_round:.1f} s after the start")
        print(
            f"monitor over {args.seconds:.0f} s: {rate:,.0f} checks/s sustained "
            f"({rate / wanted:.2f}x the {wanted:,.0f}/s the schedule asks for; "
            f"{rate / raw:.2f}x the baseline's raw rate, the mean of both)"
        )
        print(
            f"scheduling lag: p50 {percentile(in_window, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(in_window, 0.99) * 1000:.0f} ms, "
            f"max {max(in_window, default=0) * 1000:.0f} ms; failed checks: {recorder.failures}"
        )
        checks = max(len(in_window), 1)
        print(
            f"CPU per check: leader {cpu / checks * 1e6:.0f} us ({cpu / args.seconds:.0%} of a "
            f"core), responders {responder_cpu / checks * 1e6:.0f} us "
            f"({responder_cpu / args.seconds:.0%} of a core)"
        )
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--baseline-seconds", type=float, default=15.0)
    parser.add_argument("--responders", type=int, default=None, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.responders is not None:
        responders(parsed.responders)
    else:
        trio.run(main, parsed)
