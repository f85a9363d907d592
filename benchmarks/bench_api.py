"""B3: API latency with 10,000 apps and 50,000 tasks stored, over real HTTP.

Reports, each measured in this run:
- p50/p99 of ``GET /v2/apps?embed=apps.tasks`` next to the serialisation floor: the
  time ``orjson.dumps`` takes for the identical payload (target: p99 <= 5x floor);
- p50/p99 of a single-app ``GET`` and of ``POST /v2/apps`` (state write included)
  next to ``GET /ping``.

Usage: python benchmarks/bench_api.py [--apps 10000] [--tasks-per-app 5] [--rounds 20]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx
import orjson
import trio

import marathon_rest.plugin
from marathon_core.config import parse_config
from marathon_core.leadership import LeaderState
from marathon_core.model.app import AppDefinition, PortDefinition
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId, Task, TaskId
from marathon_core.plugins import get_plugin_host
from marathon_core.scheduler.tracker import InstanceTracker
from marathon_core.service import ServiceContext, validation_context
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore
from marathon_rest.server import serve_api


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def populate(state: StateStore, apps: int, tasks_per_app: int) -> None:
    now = Timestamp.now()
    root = Group.empty_root(version=now)
    definitions = []
    for n in range(apps):
        app = AppDefinition(
            id=PathId.parse(f"/bench/g{n % 100}/app{n}"),
            cmd="sleep 3600",
            instances=tasks_per_app,
            port_definitions=(PortDefinition(port=10000 + n % 5000),),  # leaves ports free
            labels={"team": f"t{n % 7}"},
            version=now,
        )
        definitions.append(app)
    for app in definitions:
        root = root.update_app(app)
    await state.store_root(root)
    instances = []
    for app in definitions:
        for k in range(tasks_per_app):
            iid = InstanceId.new(app.id)
            task = Task(
                TaskId.for_instance(iid),
                Condition.RUNNING,
                staged_at=now,
                started_at=now,
                host_ports=(31000 + k,),
                run_spec_version=now,
            )
            instances.append(
                Instance(
                    iid,
                    condition=Condition.RUNNING,
                    tasks=(task,),
                    agent=AgentInfo(f"127.0.0.{2 + k}", f"agent-{k}"),
                    run_spec_version=now,
                )
            )
    await state.instances.put_many(instances)


async def timed(
    client: httpx.AsyncClient, method: str, url: str, rounds: int, body: Any = None
) -> tuple[list[float], httpx.Response]:
    samples = []
    response = None
    for i in range(rounds):
        json_body = body(i) if callable(body) else body
        started = time.perf_counter()
        response = await client.request(method, url, json=json_body)
        samples.append(time.perf_counter() - started)
        assert response.status_code < 300, response.text[:300]
    assert response is not None
    return samples, response


def report(name: str, samples: list[float], baseline: float | None = None) -> None:
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    ratio = f"  p99 = {p99 / baseline:.1f}x baseline" if baseline else ""
    print(f"{name:<44} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms{ratio}")


async def main(args: argparse.Namespace) -> None:
    host = get_plugin_host(load_entrypoints=False, extra={"rest": marathon_rest.plugin})
    config = parse_config(
        ["--http_port", "0", "--http_address", "127.0.0.1"],
        addoption_hook=host.addoption,
        environ={},
    )
    state = await StateStore.open(MemoryStorage())
    started = time.perf_counter()
    await populate(state, args.apps, args.tasks_per_app)
    print(
        f"stored {args.apps} apps, {args.apps * args.tasks_per_app} tasks "
        f"in {time.perf_counter() - started:.1f} s"
    )
    ctx = ServiceContext(
        config=config,
        plugins=host,
        master_url="http://127.0.0.1:5050",
        state=state,
        validation=validation_context(config, host),
    )
    # The API serves instances from the leader's in-memory tracker, as a leading
    # scheduler does (only the tracker is used; no Mesos runs here).
    tracker = await InstanceTracker.load(state, ctx.events)
    ctx.leader = LeaderState(tracker=tracker, scheduler=None, mesos=None)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_api, ctx)
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            cold, _ = await timed(client, "GET", "/v2/apps?embed=apps.tasks", 1)
            list_samples, listing = await timed(
                client, "GET", "/v2/apps?embed=apps.tasks", args.rounds
            )
            payload = listing.json()
            floor = []
            for _ in range(args.rounds):
                t = time.perf_counter()
                orjson.dumps(payload)
                floor.append(time.perf_counter() - t)
            floor_p50 = percentile(floor, 0.5) * 1000
            print(
                f"payload: {len(listing.content) / 1e6:.1f} MB, "
                f"{sum(len(a['tasks']) for a in payload['apps'])} tasks"
            )
            report("orjson.dumps of the same payload (floor)", floor)
            report("GET /v2/apps?embed=apps.tasks (first, cold)", cold, floor_p50)
            report("GET /v2/apps?embed=apps.tasks (warm)", list_samples, floor_p50)
            ping, _ = await timed(client, "GET", "/ping", 200)
            ping_p50 = percentile(ping, 0.5) * 1000
            report("GET /ping (baseline)", ping)
            one, _ = await timed(client, "GET", "/v2/apps/bench/g1/app1", 200)
            report("GET /v2/apps/{id}", one, ping_p50)
            posts, _ = await timed(
                client, "POST", "/v2/apps", 100, lambda i: {"id": f"/new/app{i}", "cmd": "sleep 1"}
            )
            report("POST /v2/apps (state write included)", posts, ping_p50)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--tasks-per-app", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    trio.run(main, parser.parse_args())
