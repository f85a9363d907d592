"""The UI under load, in Debian's Chromium against a server in this process: a page
left open under a stream of events for minutes keeps a flat JS heap, DOM and
listener count, and a 200 KB definition in the editor keeps typing responsive.

Marathon's UI climbed to hundreds of MB overnight (marathon#2755). Here the server
runs in this process (memory state, the leader's live view) and publishes events
about the apps on the page at 3,000 a minute, and every few seconds an app is created
on the page and removed again; Chromium (Debian's, through Playwright in a worker
thread, while the events flow) keeps the apps page open, and every 10 s its heap after
a forced collection, its DOM nodes and its event listeners are sampled. The soak lasts
``MARATHON_UI_SOAK_SECONDS`` (default 120, which CI runs; longer for an overnight
check): the test's wall time is the soak's.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trio

import marathon_constraints.plugin
import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.model.events import app_terminated_event, make_event
from marathon_core.model.ids import PathId
from marathon_core.testing.context import CoreContext, ManualLeader, memory_context
from marathon_core.testing.pytest_plugin import in_ci
from marathon_rest.server import serve_api

pytestmark = pytest.mark.processes

CHROMIUM = Path("/usr/bin/chromium")
EVENTS_PER_SECOND = 50
SOAK_APPS = 20
#: An app created on the page and removed again this often (the membership path).
CHURN_SECONDS = 3
SAMPLE_SECONDS = 10
#: The soak's length; shorter would not show a slow climb (CI runs at least 120 s).
SOAK_SECONDS = float(os.environ.get("MARATHON_UI_SOAK_SECONDS", "120"))
#: All the apps page may request: itself, its files, its rows and order, its stream.
PAGE_PATHS = {
    "/ui/apps",
    "/ui/static/live.js",
    "/ui/static/ui.css",
    "/ui/f/app-rows",
    "/ui/f/app-page",
    "/ui/stream",
}


@pytest.fixture
def chromium() -> Iterator[Path]:
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"Chromium is required when CI=true: {why}")
        pytest.skip(why)
    yield CHROMIUM


def soak_samples(url: str, seconds: float) -> dict[str, Any]:
    """Keep the apps page open for ``seconds``; every SAMPLE_SECONDS, after a forced
    collection, its JS heap, DOM nodes and event listeners, and the fetches it made."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page()
        cdp = page.context.new_cdp_session(page)
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(urlsplit(r.url).path))

        def sample() -> dict[str, int]:
            cdp.send("HeapProfiler.collectGarbage")
            counters = cdp.send("Memory.getDOMCounters")
            return {
                "heap": cdp.send("Runtime.getHeapUsage")["usedSize"],
                "nodes": counters["nodes"],
                "listeners": counters["jsEventListeners"],
                "fetches": page.evaluate("window.marathonUi.fetches"),
            }

        started = time.monotonic()
        page.goto(f"{url}/ui/apps")
        samples = []
        for n in range(1, int(seconds // SAMPLE_SECONDS) + 1):
            page.wait_for_timeout(max(0, started + n * SAMPLE_SECONDS - time.monotonic()) * 1000)
            samples.append(sample())
        rows = page.locator("tr[data-app-id]").count()
        browser.close()
    return {"samples": samples, "rows": rows, "paths": fetched}


@pytest.fixture
async def ctx(nursery: trio.Nursery) -> CoreContext:
    context = await memory_context(
        ["--http_port", "0", "--http_address", "127.0.0.1"],
        plugins={
            "rest": marathon_rest.plugin,
            "ui": marathon_ui.plugin,
            "constraints": marathon_constraints.plugin,
        },
    )
    await nursery.start(context.election.run, trio.sleep_forever)
    ManualLeader.attach(context)
    return context


@pytest.mark.slow
async def test_an_open_page_keeps_a_flat_heap_under_events(
    ctx: CoreContext, chromium: Path, nursery: trio.Nursery
) -> None:
    assert SOAK_SECONDS >= 6 * SAMPLE_SECONDS, "too short a soak to see a trend"
    if in_ci():
        assert SOAK_SECONDS >= 120, "CI soaks for two minutes at least"
    url: str = await nursery.start(serve_api, ctx)
    async with httpx.AsyncClient(base_url=url) as client:
        for n in range(SOAK_APPS):
            body = {"id": f"/soak/app-{n:02}", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}
            assert (await client.post("/v2/apps", json=body)).status_code == 201

    async def publish() -> None:
        n = 0
        while True:
            app_id = f"/soak/app-{n % SOAK_APPS:02}"
            ctx.events.publish(
                make_event("status_update_event", appId=app_id, taskStatus="TASK_RUNNING")
            )
            n += 1
            await trio.sleep(1 / EVENTS_PER_SECOND)

    async def churn() -> None:
        """Apps created between the others (inserted) and removed again (dropped)."""
        async with httpx.AsyncClient(base_url=url) as client:
            for n in itertools.count():
                app_id = f"/soak/app-05-{n:06}"
                body = {"id": app_id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}
                await trio.sleep(CHURN_SECONDS / 2)
                assert (await client.post("/v2/apps", json=body)).status_code == 201
                await trio.sleep(CHURN_SECONDS / 2)
                gone = await client.delete(f"/v2/apps{app_id}?force=true")
                assert gone.status_code == 200, gone.text
                # No scheduler runs here to finish it: drop it, or the deployment limit
                # (--max_running_deployments) is hit after a few minutes.
                deployment = gone.json()["deploymentId"]
                stopped = await client.delete(f"/v2/deployments/{deployment}?force=true")
                assert stopped.status_code == 202, stopped.text
                ctx.events.publish(app_terminated_event(PathId.parse(app_id)))

    nursery.start_soon(publish)
    nursery.start_soon(churn)
    result = await trio.to_thread.run_sync(soak_samples, url, SOAK_SECONDS)
    samples = result["samples"]
    third = len(samples) // 3
    first, last = samples[:third], samples[-third:]

    def median(part: list[dict[str, int]], key: str) -> float:
        return statistics.median(s[key] for s in part)

    heaps = " ".join(f"{s['heap'] / 1e6:.2f}" for s in samples)
    fetches = samples[-1]["fetches"] - samples[0]["fetches"]
    span = SAMPLE_SECONDS * (len(samples) - 1)
    paths = result["paths"]
    print(
        f"{SOAK_SECONDS:.0f} s at {EVENTS_PER_SECOND} events/s; collected JS heap MB every"
        f" {SAMPLE_SECONDS} s: {heaps}; nodes {[s['nodes'] for s in samples]};"
        f" listeners {[s['listeners'] for s in samples]}; {fetches} fetches in {span} s"
        f" ({paths.count('/ui/f/app-rows')} app-rows, {paths.count('/ui/f/app-page')} app-page)"
    )
    assert result["rows"] in (SOAK_APPS, SOAK_APPS + 1)
    # It followed the events (coalesced: a few fetches a second, not one per event)
    # and the apps that came and went (their rows placed by the page's order).
    assert span * 1 <= fetches <= span * 5, result
    assert paths.count("/ui/f/app-page") >= span / CHURN_SECONDS / 2, result
    assert set(paths) <= PAGE_PATHS, set(paths)
    # No upward trend: the last third's medians within a small bound of the first's.
    heap_before = median(first, "heap")
    assert median(last, "heap") <= heap_before + max(0.05 * heap_before, 256 * 1024), samples
    assert median(last, "nodes") <= median(first, "nodes") * 1.05 + 20, samples
    assert median(last, "listeners") <= median(first, "listeners"), samples


def keystroke_latencies(url: str, app_id: str, keys: int, screenshots: Path) -> dict[str, Any]:
    """Fill the editor with the app's large definition, then type ``keys`` characters;
    per key, milliseconds from keydown to the next frame (what a user waits to see)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page()
        page.goto(f"{url}/ui/edit{app_id}?view=json")
        size = page.evaluate("document.getElementById('definition').value.length")
        page.evaluate(
            """() => {
                window.keyLatencies = [];
                document.getElementById('definition').addEventListener('keydown', () => {
                    const start = performance.now();
                    const seen = () => window.keyLatencies.push(performance.now() - start);
                    requestAnimationFrame(seen);
                });
            }"""
        )
        editor = page.locator("#definition")
        editor.click()
        page.keyboard.press("Control+End")
        for _ in range(keys):
            page.keyboard.type(" ")
        page.wait_for_timeout(500)  # the debounced parse runs once typing stops
        latencies: list[float] = page.evaluate("window.keyLatencies")
        parse_state = page.locator("#parse-state").inner_text()
        page.locator("#preview").click()
        page.locator("#result .preview").wait_for(timeout=30_000)
        page.screenshot(path=str(screenshots / "editor.png"))
        browser.close()
    return {"size": size, "latencies": sorted(latencies), "parse": parse_state}


@pytest.mark.alone
async def test_a_200_kb_definition_keeps_typing_responsive(
    ctx: CoreContext, chromium: Path, nursery: trio.Nursery, screenshots: Path
) -> None:
    url: str = await nursery.start(serve_api, ctx)
    env = {f"VARIABLE_{n:05}": "x" * 30 for n in range(4000)}
    body = {"id": "/big/env", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "env": env}
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/v2/apps", json=body)).status_code == 201
    result = await trio.to_thread.run_sync(keystroke_latencies, url, "/big/env", 40, screenshots)
    latencies = result["latencies"]
    print(
        f"{result['size']} chars; keydown to frame ms: median {latencies[len(latencies) // 2]:.1f},"
        f" p90 {latencies[int(len(latencies) * 0.9)]:.1f}, max {latencies[-1]:.1f}"
    )
    assert result["size"] > 200_000
    assert len(latencies) >= 40  # and the Control+End that got there
    assert result["parse"] == "valid JSON"
    assert latencies[int(len(latencies) * 0.9)] < 50, latencies


def event_tail(url: str, ctx: CoreContext, trio_token: trio.lowlevel.TrioToken, shots: Path) -> Any:
    """Open the events page, have 300 events published, and read what it lists."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page()
        page.goto(f"{url}/ui/events")
        while page.evaluate("document.getElementById('stream-state').dataset.state") != "live":
            page.wait_for_timeout(50)

        def publish() -> None:
            for n in range(300):
                ctx.events.publish(make_event("tail_test_event", appId=f"/tail/app-{n:03}"))

        trio.from_thread.run_sync(publish, trio_token=trio_token)
        page.locator("#event-rows tr", has_text="/tail/app-299").wait_for(timeout=10_000)
        rows = page.locator("#event-rows tr").count()
        newest = page.locator("#event-rows tr").first.inner_text()
        page.screenshot(path=str(shots / "events.png"))
        browser.close()
    return rows, newest


async def test_the_event_tail_shows_the_latest_events_capped(
    ctx: CoreContext, chromium: Path, nursery: trio.Nursery, screenshots: Path
) -> None:
    url: str = await nursery.start(serve_api, ctx)
    token = trio.lowlevel.current_trio_token()
    rows, newest = await trio.to_thread.run_sync(event_tail, url, ctx, token, screenshots)
    assert rows == 200
    assert "tail_test_event" in newest and "/tail/app-299" in newest
