"""The web UI's apps page with 10,000 apps and 50,000 tasks, beside ``GET /v2/apps``.

Reports, each measured in this run over real HTTP (the UI served by marathon-rest):
- server time (p50/p99) and bytes of ``/ui/apps`` (first page of 50, whole list
  filtered and sorted on the server), of a filtered and a sorted page, and of the
  row fragment a live update fetches, next to ``GET /v2/apps`` and
  ``GET /v2/apps?embed=apps.tasks`` for the same apps (what Marathon's UI pulled);
- with ``/usr/bin/chromium`` present: the browser's first render of ``/ui/apps``
  (navigation start to load event, and to first contentful paint).

Usage: python benchmarks/bench_ui.py [--apps 10000] [--tasks-per-app 5] [--rounds 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import httpx
import trio
from bench_api import percentile, populate, timed

import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.config import parse_config
from marathon_core.context import CoreContext
from marathon_core.election import SoloElection
from marathon_core.heap import settle_heap
from marathon_core.plugins import get_plugin_host
from marathon_core.service import validation_context
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore
from marathon_core.testing.context import ManualLeader
from marathon_rest.server import serve_api

CHROMIUM = Path("/usr/bin/chromium")


def first_render(url: str) -> dict[str, float]:
    """Milliseconds from navigation start to first contentful paint and to load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page()
        page.goto(url, wait_until="load")
        timing: dict[str, float] = page.evaluate(
            """() => {
                const nav = performance.getEntriesByType('navigation')[0];
                const paint = performance.getEntriesByName('first-contentful-paint')[0];
                return {load: nav.loadEventEnd, fcp: paint ? paint.startTime : -1,
                        bytes: nav.transferSize};
            }"""
        )
        browser.close()
    return timing


def line(name: str, samples: list[float], size: int) -> None:
    p50, p99 = percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000
    print(f"{name:<46} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms   {size / 1e3:9.1f} kB")


async def main(args: argparse.Namespace) -> None:
    host = get_plugin_host(
        load_entrypoints=False, extra={"rest": marathon_rest.plugin, "ui": marathon_ui.plugin}
    )
    config = parse_config(
        ["--http_port", "0", "--http_address", "127.0.0.1"],
        addoption_hook=host.addoption,
        environ={},
    )
    state = await StateStore.open(MemoryStorage())
    await populate(state, args.apps, args.tasks_per_app)
    ctx = CoreContext(
        config=config,
        plugins=host,
        master_url="http://127.0.0.1:5050",
        state=state,
        validation=validation_context(config, host),
        election=SoloElection("localhost:8080"),
    )
    await ManualLeader.load(ctx)
    settle_heap()
    print(f"{args.apps} apps, {args.apps * args.tasks_per_app} tasks")
    async with trio.open_nursery() as nursery:
        await nursery.start(ctx.election.run, trio.sleep_forever)
        url = await nursery.start(serve_api, ctx)
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            cases: list[tuple[str, str]] = [
                ("/ui/apps (first page of 50)", "/ui/apps"),
                ("/ui/apps?q=app12 (filtered)", "/ui/apps?q=app12"),
                ("/ui/apps?sort=-mem&page=20 (sorted, page 20)", "/ui/apps?sort=-mem&page=20"),
                ("/ui/f/app-rows (one row, a live update)", "/ui/f/app-rows?id=/bench/g1/app1"),
                ("GET /v2/apps", "/v2/apps"),
                ("GET /v2/apps?embed=apps.tasks", "/v2/apps?embed=apps.tasks"),
            ]
            cold, first = await timed(client, "GET", "/ui/apps", 1)
            line("/ui/apps (first request, cold)", cold, len(first.content))
            for name, path in cases:
                samples, response = await timed(client, "GET", path, args.rounds)
                line(name, samples, len(response.content))
        if CHROMIUM.exists():
            render: dict[str, Any] = await trio.to_thread.run_sync(first_render, url + "/ui/apps")
            print(
                f"Chromium first render of /ui/apps: first contentful paint "
                f"{render['fcp']:.0f} ms, load event {render['load']:.0f} ms, "
                f"{render['bytes'] / 1e3:.1f} kB transferred"
            )
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--tasks-per-app", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    started = time.perf_counter()
    trio.run(main, parser.parse_args())
    print(f"({time.perf_counter() - started:.0f} s in all)")
