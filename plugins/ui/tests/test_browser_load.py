"""The UI under load, in Debian's Chromium against a server in this process: a page
left open under a steady stream of events keeps a flat JS heap, and a 200 KB
definition in the editor keeps typing responsive.

Marathon's UI climbed to hundreds of MB overnight (marathon#2755). Here the server
runs in this process (memory state, the leader's live view) and publishes events
about an app on the page at about 1,200 a minute; Chromium (Debian's, through
Playwright in a worker thread) keeps the apps page open, and its heap after a
forced collection is compared between the end of a warm-up and the end of the run.
``MARATHON_UI_SOAK_SECONDS`` sets the run's length (default 40 s; minutes for a
real soak).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import marathon_constraints.plugin
import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.model.events import make_event
from marathon_core.testing.context import CoreContext, ManualLeader, memory_context
from marathon_core.testing.pytest_plugin import in_ci
from marathon_rest.server import serve_api

pytestmark = pytest.mark.processes

CHROMIUM = Path("/usr/bin/chromium")
EVENTS_PER_SECOND = 20
WARM_UP_SECONDS = 10


@pytest.fixture
def chromium() -> Iterator[Path]:
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"Chromium is required when CI=true: {why}")
        pytest.skip(why)
    yield CHROMIUM


def heap_samples(url: str, seconds: float) -> dict[str, Any]:
    """Open the apps page, and report the collected heap after the warm-up and at the
    end, with how many row fetches the page made (it did follow the events)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page()
        cdp = page.context.new_cdp_session(page)

        def used() -> int:
            cdp.send("HeapProfiler.collectGarbage")
            size: int = cdp.send("Runtime.getHeapUsage")["usedSize"]
            return size

        page.goto(f"{url}/ui/apps")
        page.wait_for_timeout(WARM_UP_SECONDS * 1000)
        fetches_before = page.evaluate("window.marathonUi.fetches")
        before = used()
        page.wait_for_timeout(seconds * 1000)
        after = used()
        fetches = page.evaluate("window.marathonUi.fetches") - fetches_before
        rows = page.locator("tr[data-app-id]").count()
        browser.close()
    return {"before": before, "after": after, "fetches": fetches, "rows": rows}


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
    url: str = await nursery.start(serve_api, ctx)
    async with httpx.AsyncClient(base_url=url) as client:
        for n in range(20):
            body = {"id": f"/soak/app-{n:02}", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}
            assert (await client.post("/v2/apps", json=body)).status_code == 201
    seconds = float(os.environ.get("MARATHON_UI_SOAK_SECONDS", "40"))

    async def publish() -> None:
        n = 0
        while True:
            app_id = f"/soak/app-{n % 20:02}"
            ctx.events.publish(
                make_event("status_update_event", appId=app_id, taskStatus="TASK_RUNNING")
            )
            n += 1
            await trio.sleep(1 / EVENTS_PER_SECOND)

    nursery.start_soon(publish)
    result = await trio.to_thread.run_sync(heap_samples, url, seconds)
    growth = result["after"] - result["before"]
    print(f"JS heap {result['before'] / 1e6:.2f} MB -> {result['after'] / 1e6:.2f} MB, {result}")
    assert result["rows"] == 20
    # It followed the events (coalesced: a few fetches a second, not one per event).
    assert seconds * 1 <= result["fetches"] <= seconds * 5
    assert growth < max(0.2 * result["before"], 512 * 1024), result


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
        page.goto(f"{url}/ui/edit{app_id}")
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
