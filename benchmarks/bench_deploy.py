"""Deployments at scale: 1,000 one-instance apps POSTed 100 at a time all succeed.

Runs ``marathon --master local`` with simulated agents (tasks change state on a timer
and run no process), posts the apps in concurrent batches over real HTTP, and follows
``/v2/events``. Reports apps/s created, time to the last ``deployment_success``, and
failures, next to the rate of ``GET /ping`` round trips measured in the same run
(the HTTP floor of this machine right now).

Usage: python benchmarks/bench_deploy.py [--apps 1000] [--batch 100] [--agents 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

from marathon_core.testing.processes import running_marathon


async def follow_events(
    url: str,
    finished: dict[str, str],
    changed: list[trio.Event],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Record the outcome of every deployment (success or failure) by its id."""
    query = "event_type=deployment_success&event_type=deployment_failed"
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", f"{url}/v2/events?{query}") as response,
    ):
        task_status.started()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                finished[event["id"]] = event["eventType"]
                changed[0].set()
                changed[0] = trio.Event()


async def bench(url: str, apps: int, batch: int) -> None:
    async with httpx.AsyncClient(
        base_url=url, timeout=60, limits=httpx.Limits(max_connections=batch)
    ) as client:
        started = time.perf_counter()
        for _ in range(200):
            await client.get("/ping")
        ping_rate = 200 / (time.perf_counter() - started)

        deployments: set[str] = set()
        finished: dict[str, str] = {}
        changed = [trio.Event()]
        failures = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(follow_events, url, finished, changed)
            started = time.perf_counter()
            for first in range(0, apps, batch):

                async def post(n: int) -> None:
                    nonlocal failures
                    body = {"id": f"/b2/app{n}", "cmd": "sleep 3600", "cpus": 0.01, "mem": 8}
                    try:
                        response = await client.post("/v2/apps", json=body)
                    except httpx.HTTPError as exc:
                        failures += 1
                        print(f"POST {n}: {type(exc).__name__}: {exc}", file=sys.stderr)
                        return
                    if response.status_code != 201:
                        failures += 1
                        print(
                            f"POST {n}: {response.status_code} {response.text[:200]}",
                            file=sys.stderr,
                        )
                        return
                    deployments.add(response.headers["Marathon-Deployment-Id"])

                async with trio.open_nursery() as posts:
                    for n in range(first, min(apps, first + batch)):
                        posts.start_soon(post, n)
                # "100 at a time": the next batch once this one is deployed, so at most
                # `batch` deployments run (Marathon refuses more than 100 with a 403).
                with trio.move_on_after(600):
                    while not deployments <= finished.keys():
                        await changed[0].wait()
            posted = done_after = time.perf_counter() - started
            nursery.cancel_scope.cancel()
    outcomes = [finished.get(d) for d in deployments]
    print(f"GET /ping round trips (baseline):  {ping_rate:8.0f}/s")
    print(
        f"apps created and deployed:         {apps - failures:8d} in {posted:.1f} s "
        f"= {(apps - failures) / posted:.0f}/s ({(apps - failures) / posted / ping_rate:.3f} "
        "of the ping rate)"
    )
    print(
        f"deployment_success:                {outcomes.count('deployment_success'):8d} "
        f"(all done after {done_after:.1f} s; {outcomes.count(None)} unfinished)"
    )
    print(
        f"deployment_failed / POST failures: {outcomes.count('deployment_failed'):8d} / {failures}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--agents", type=int, default=50)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as state,
        running_marathon(
            "--master",
            "local",
            "--local_agents",
            "0",
            "--local_simulated_agents",
            str(args.agents),
            "--local_master_port",
            "0",
            "--min_revive_offers_interval",
            "200",
            state_dir=Path(state),
        ) as server,
    ):
        trio.run(bench, server.url, args.apps, args.batch)


if __name__ == "__main__":
    main()
