"""API latency with 10,000 apps and 50,000 tasks stored, over real HTTP.

Reports, each measured in this run:
- p50/p99 of ``GET /v2/apps?embed=apps.tasks`` next to the serialisation floor: the
  time ``orjson.dumps`` takes for the identical payload (target: p99 <= 5x floor),
  first (cold), repeated, and with a few apps changed before each request (tasks of
  5 apps change state, 1 app gets a new definition), as a live cluster has them;
- p50/p99 of a single-app ``GET`` and of ``POST /v2/apps`` (state write included)
  next to ``GET /ping``.

Usage: python benchmarks/bench_api.py [--apps 10000] [--tasks-per-app 5] [--rounds 20]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import httpx
import orjson
import trio

import marathon_rest.plugin
from marathon_core.config import parse_config
from marathon_core.context import CoreContext
from marathon_core.election import SoloElection
from marathon_core.heap import settle_heap
from marathon_core.model.app import AppDefinition, PortDefinition
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId, Task, TaskId
from marathon_core.plugins import get_plugin_host
from marathon_core.service import validation_context
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore
from marathon_core.testing.context import ManualLeader
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
    client: httpx.AsyncClient,
    method: str,
    url: str,
    rounds: int,
    body: Any = None,
    *,
    before: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[list[float], httpx.Response]:
    """Latencies of ``rounds`` requests; ``before(i)`` runs untimed before request ``i``."""
    samples = []
    response = None
    for i in range(rounds):
        if before is not None:
            await before(i)
        json_body = body(i) if callable(body) else body
        started = time.perf_counter()
        response = await client.request(method, url, json=json_body)
        samples.append(time.perf_counter() - started)
        assert response.status_code < 300, response.text[:300]
    assert response is not None
    return samples, response


async def change_a_few_apps(ctx: CoreContext, leader: ManualLeader, rng: random.Random) -> None:
    """What changes between two listings of a live cluster: 5 apps' tasks change state
    (RUNNING <-> STAGING) and 1 app gets a new definition (its deployment then ends)."""
    root = await ctx.root()
    apps = list(root.transitive_apps())
    flipped = []
    for app in rng.sample(apps, 5):
        instance = leader.instances_of(app.id)[0]
        task = instance.task
        assert task is not None
        condition = Condition.STAGING if task.condition is Condition.RUNNING else Condition.RUNNING
        task = attrs.evolve(task, condition=condition)
        flipped.append(attrs.evolve(instance, condition=condition, tasks=(task,)))
    await leader.put(*flipped)
    relabelled = rng.choice(apps)
    change = await ctx.update_root(
        lambda r: r.update_app(
            attrs.evolve(relabelled, labels={**relabelled.labels, "rev": str(rng.random())})
        )
    )
    await ctx.state.complete_deployment(change.deployment.id)
    ctx.registry.remove(change.deployment.id)


def report(name: str, samples: list[float], baseline: float | None = None) -> None:
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    ratio = f"  p99 = {p99 / baseline:.1f}x baseline" if baseline else ""
    print(f"{name:<54} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms{ratio}")


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
    ctx = CoreContext(
        config=config,
        plugins=host,
        master_url="http://127.0.0.1:5050",
        state=state,
        validation=validation_context(config, host),
        election=SoloElection("localhost:8080"),
    )
    # The API serves instances from the leader's in-memory tracker, as a leading
    # scheduler does (only the tracker is used; no Mesos runs here).
    leader = await ManualLeader.load(ctx)
    settle_heap()  # as a leader does once its state is loaded
    async with trio.open_nursery() as nursery:
        await nursery.start(ctx.election.run, trio.sleep_forever)  # this process leads
        url = await nursery.start(serve_api, ctx)
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            cold, _ = await timed(client, "GET", "/v2/apps?embed=apps.tasks", 1)
            list_samples, listing = await timed(
                client, "GET", "/v2/apps?embed=apps.tasks", args.rounds
            )
            rng = random.Random(1)

            async def change(_: int) -> None:
                await change_a_few_apps(ctx, leader, rng)

            changed_samples, _ = await timed(
                client, "GET", "/v2/apps?embed=apps.tasks", args.rounds, before=change
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
            # The client's decoded copy is no server state: keep it out of what follows.
            del payload, listing
            report("orjson.dumps of the same payload (floor)", floor)
            report("GET /v2/apps?embed=apps.tasks (first, cold)", cold, floor_p50)
            report("GET /v2/apps?embed=apps.tasks (warm, unchanged)", list_samples, floor_p50)
            report(
                "GET /v2/apps?embed=apps.tasks (warm, 6 apps changed)", changed_samples, floor_p50
            )
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
