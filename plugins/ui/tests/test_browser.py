"""The UI in Debian's Chromium (Playwright, never a downloaded browser) against
``marathon --master local`` with two agents: live rows, reasons, quiet hidden tabs.

Every test routes all of the page's requests through a check that they go to
127.0.0.1 only, and the run writes a screenshot of each page it visits into
``$MARATHON_UI_SCREENSHOTS`` (default: a pytest temporary directory).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from marathon_core.testing.processes import (
    RunningMarathon,
    local_cluster_args,
    running_marathon,
    searchable_state_dir,
    wait_for,
)
from marathon_ui.data import format_delay

pytestmark = [pytest.mark.processes, pytest.mark.cluster]

#: How long a row may take to follow the cluster (tasks start in well under this).
LIVE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server() -> Iterator[RunningMarathon]:
    with (
        searchable_state_dir() as state_dir,
        running_marathon(
            *local_cluster_args(2, agent_resources="cpus:4;mem:2048;disk:1000;ports:[31000-31100]"),
            state_dir=state_dir,
        ) as running,
    ):
        yield running
        assert running.stop() == 0


def until(page: Any, condition: Any, what: str, timeout: float = 10) -> None:
    """Wait for ``condition`` while letting Playwright deliver the page's events."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(100)


def live(page: Any) -> bool:
    """Whether the page's stream is open (the page's CSP forbids Playwright's
    ``wait_for_function``, which evaluates strings; ``evaluate`` goes through CDP)."""
    return bool(page.evaluate("document.getElementById('stream-state').dataset.state === 'live'"))


def shoot(page: Any, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def create(server: RunningMarathon, app: dict[str, Any]) -> None:
    body = {"cmd": "sleep 3600", "cpus": 0.1, "mem": 16, **app}
    response = httpx.post(f"{server.url}/v2/apps", json=body, timeout=10)
    assert response.status_code == 201, response.text


def running(server: RunningMarathon, app_id: str) -> int:
    response = httpx.get(f"{server.url}/v2/apps{app_id}", timeout=5)
    return int(response.json()["app"]["tasksRunning"]) if response.status_code == 200 else 0


def test_scale_from_the_apps_page_follows_events_not_polls(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    create(server, {"id": "/web/scaled", "instances": 1})
    wait_for(lambda: running(server, "/web/scaled") == 1, timeout=60, what="1 task running")
    page.goto(f"{server.url}/ui/apps?q=scaled")
    until(page, lambda: live(page), "the stream to open")
    row = page.locator('tr[data-app-id="/web/scaled"]')
    assert row.locator("td.running").inner_text() == "1/1"
    after_load: list[tuple[str, str]] = []
    page.on("request", lambda r: after_load.append((r.method, urlsplit(r.url).path)))

    row.locator("input[name=instances]").fill("3")
    row.get_by_role("button", name="Scale").click()
    page.locator('tr[data-app-id="/web/scaled"] td.running').filter(has_text="3/3").wait_for(
        timeout=LIVE_TIMEOUT_MS
    )
    shoot(page, screenshots, "apps")

    paths = [path for _, path in after_load]
    assert ("PUT", "/v2/apps/web/scaled") in after_load
    assert "/ui/apps" not in paths, "the page reloaded"
    assert not [p for p in paths if p in ("/v2/apps", "/v2/groups", "/v2/queue")], paths
    assert all(p in ("/v2/apps/web/scaled", "/ui/f/app-rows", "/ui/stream") for p in paths), paths
    # Coalesced: far fewer row fetches than the events of two launches.
    assert 1 <= paths.count("/ui/f/app-rows") <= 12, paths


def test_an_unsatisfiable_unique_app_says_why_on_every_page(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    create(
        server,
        {"id": "/why/unique", "instances": 3, "constraints": [["hostname", "UNIQUE"]]},
    )

    def explained() -> bool:
        queue = httpx.get(f"{server.url}/v2/queue", timeout=5).json()["queue"]
        return any(
            e["app"]["id"] == "/why/unique" and e["processedOffersSummary"]["lastRejectReasons"]
            for e in queue
        )

    wait_for(explained, timeout=60, what="the queue to explain /why/unique")

    page.goto(f"{server.url}/ui/apps?q=unique")
    reason = page.locator('tr[data-app-id="/why/unique"] .reason')
    assert "UNIQUE" in reason.inner_text()
    shoot(page, screenshots, "apps-unsatisfiable")
    # The backoff countdown: live.js formats as data.format_delay does, and ticks a span.
    samples = [0, 0.4, 59.4, 65, 7325]
    assert page.evaluate("s => s.map(window.marathonUi.countdown)", samples) == [
        format_delay(s) for s in samples
    ]
    page.evaluate(
        "html => document.querySelector('main').insertAdjacentHTML('beforeend', html)",
        '<p id="tick"><span class="countdown" data-seconds="2.5">3s</span></p>',
    )
    countdown = page.locator("#tick .countdown")
    countdown.filter(has_text="2s").wait_for(timeout=3_000)
    countdown.filter(has_text="now").wait_for(timeout=4_000)

    page.goto(f"{server.url}/ui/apps/why/unique")
    why = page.locator("#why")
    assert "UNIQUE" in why.inner_text()
    assert "noMatchingOffer" in why.inner_text()
    # Both agents run one instance already: each fails UNIQUE, and only UNIQUE.
    agents = why.locator("table.placement-table tr[data-agent-host]")
    assert agents.count() == 2
    assert why.locator('td[data-check="hostname:UNIQUE"].fail').count() == 2
    assert why.locator("td.check.fail").count() == 2
    assert "UNIQUE" in agents.first.locator("td.reason").inner_text()
    shoot(page, screenshots, "app-why")

    page.goto(f"{server.url}/ui/deployments")
    article = page.locator('article[data-apps~="/why/unique"]')
    assert "noMatchingOffer" in article.inner_text()
    assert "UNIQUE" in article.inner_text()
    shoot(page, screenshots, "deployments")

    # Rolling back (confirmed) replaces the stuck deployment; the page follows by events.
    stuck = article.get_attribute("id")
    page.once("dialog", lambda dialog: dialog.accept())
    article.get_by_role("button", name="Rollback").click()
    page.locator(f'article[id="{stuck}"]').wait_for(state="detached", timeout=LIVE_TIMEOUT_MS)
    wait_for(
        lambda: httpx.get(f"{server.url}/v2/apps/why/unique", timeout=5).status_code == 404,
        timeout=60,
        what="the rollback to remove the new app",
    )


def test_a_hidden_tab_holds_no_stream_and_resumes_where_it_left(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    create(server, {"id": "/hidden/app", "instances": 1})
    wait_for(lambda: running(server, "/hidden/app") == 1, timeout=60, what="1 task running")
    streams: list[str] = []
    ended: list[str] = []
    page.on("request", lambda r: "/ui/stream" in r.url and streams.append(r.url))
    page.on("requestfailed", lambda r: "/ui/stream" in r.url and ended.append(r.url))
    page.on("requestfinished", lambda r: "/ui/stream" in r.url and ended.append(r.url))
    page.goto(f"{server.url}/ui/apps/hidden/app")
    until(page, lambda: live(page), "the stream to open")
    # An event the page sees, so it has an id to resume after.
    httpx.post(f"{server.url}/v2/apps/hidden/app/restart", timeout=10).raise_for_status()
    until(page, lambda: page.evaluate("window.marathonUi.lastId") is not None, "an event")

    set_hidden = """hidden => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
            get: () => hidden ? 'hidden' : 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    page.evaluate(set_hidden, True)
    assert page.evaluate("window.marathonUi.source") is None
    until(page, lambda: len(ended) == len(streams) == 1, "the stream to end")

    # What happens while hidden reaches the page through the replay after showing it.
    response = httpx.put(f"{server.url}/v2/apps/hidden/app?force=true", json={"instances": 2})
    response.raise_for_status()
    wait_for(lambda: running(server, "/hidden/app") == 2, timeout=60, what="2 tasks running")
    page.wait_for_timeout(500)
    assert len(streams) == 1, "a hidden tab opened a stream"

    page.evaluate(set_hidden, False)
    page.locator("#app-live .counts .running").filter(has_text="2/2 running").wait_for(
        timeout=LIVE_TIMEOUT_MS
    )
    assert len(streams) == 2
    assert "after=" in streams[1]
    shoot(page, screenshots, "app")


def test_agents_and_a_task_sandbox_tail(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    create(server, {"id": "/logs/echo", "cmd": "echo hello-from-the-sandbox; exec sleep 3600"})
    wait_for(lambda: running(server, "/logs/echo") == 1, timeout=60, what="1 task running")

    page.goto(f"{server.url}/ui/agents")
    assert page.locator("tr[data-agent]").count() == 2
    assert page.locator("tr[data-agent]", has_text="/logs/echo").count() == 1
    shoot(page, screenshots, "agents")

    page.goto(f"{server.url}/ui/apps/logs/echo")
    page.locator("button[data-sandbox=stdout]").first.click()
    page.locator("#sandbox-text", has_text="hello-from-the-sandbox").wait_for(timeout=20_000)
    shoot(page, screenshots, "app-sandbox")
