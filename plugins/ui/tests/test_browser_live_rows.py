"""The apps page's membership, live, in Debian's Chromium against ``marathon --master
local``: apps another client creates through ``/v2`` are inserted at their place when
they fall on the page (the server's filter, sort and page), removed ones leave, the
page keeps its size, and a burst of creations costs a few coalesced requests.

Every request of the page must stay on 127.0.0.1, and after the first load none may
be a reload or a tree request (``/v2/apps``, ``/v2/groups``, ``/v2/queue``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
)

pytestmark = [pytest.mark.processes, pytest.mark.cluster]

#: How long the page may take to follow what the server did.
LIVE_TIMEOUT_MS = 30_000
#: What the page may request after its first load: rows, the page's order, the stream.
LIVE_PATHS = {"/ui/f/app-rows", "/ui/f/app-page", "/ui/stream"}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningMarathon]:
    with (
        searchable_state_dir() as state_dir,
        running_marathon(*local_cluster_args(1), state_dir=state_dir) as running,
    ):
        yield running
        assert running.stop() == 0


def create(server: RunningMarathon, app_id: str, client: httpx.Client | None = None) -> None:
    body = {"id": app_id, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 0}
    response = (client or httpx).post(f"{server.url}/v2/apps", json=body, timeout=30)
    assert response.status_code == 201, response.text


def open_live(page: Any, url: str) -> list[tuple[str, str]]:
    """Open ``url`` and wait for its stream; the requests made from then on."""
    page.goto(url)
    deadline = time.monotonic() + 10
    while page.evaluate("document.getElementById('stream-state').dataset.state") != "live":
        assert time.monotonic() < deadline, "the stream did not open"
        page.wait_for_timeout(50)
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.method, urlsplit(r.url).path)))
    return requests


def shown(page: Any) -> list[str]:
    ids: list[str] = page.evaluate(
        "[...document.querySelectorAll('table.apps tbody tr')].map(r => r.dataset.appId)"
    )
    return ids


def wait_shown(page: Any, expected: list[str], pager: str) -> None:
    deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
    while shown(page) != expected or pager not in page.locator("p.pager").inner_text():
        assert time.monotonic() < deadline, (shown(page), page.locator("p.pager").inner_text())
        page.wait_for_timeout(100)


def test_apps_created_elsewhere_are_placed_and_removed_ones_leave(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    for app_id in ("/live/b-app", "/live/d-app", "/live/f-app", "/live/h-app"):
        create(server, app_id)
    requests = open_live(page, f"{server.url}/ui/apps?q=-app&per=3")
    assert shown(page) == ["/live/b-app", "/live/d-app", "/live/f-app"]

    # One that sorts into the middle is inserted there and pushes the last off the
    # page; one outside the filter never shows.
    create(server, "/live/c-other")
    create(server, "/live/c-app")
    wait_shown(page, ["/live/b-app", "/live/c-app", "/live/d-app"], "5 app(s) · page 1 of 2")
    inserted = page.locator('tr[data-app-id="/live/c-app"]')
    assert inserted.locator("td.status .badge").inner_text() in ("deploying", "suspended")
    assert inserted.get_by_role("button", name="Scale").count() == 1
    page.wait_for_timeout(1000)  # the other app's deployment events have come and gone
    assert page.locator('tr[data-app-id="/live/c-other"]').count() == 0
    page.screenshot(path=str(screenshots / "apps-inserted.png"), full_page=True)

    # A removed app leaves; the next one of the list moves up, in full.
    response = httpx.delete(f"{server.url}/v2/apps/live/b-app", timeout=30)
    assert response.status_code == 200, response.text
    wait_shown(page, ["/live/c-app", "/live/d-app", "/live/f-app"], "4 app(s) · page 1 of 2")
    moved_up = page.locator('tr[data-app-id="/live/f-app"]')
    moved_up.locator("td.running").wait_for(timeout=LIVE_TIMEOUT_MS)

    # An insertion leaves the row being typed in alone; a group's removal drops all of
    # its rows the page shows.
    typed = page.locator('tr[data-app-id="/live/d-app"] input[name=instances]')
    typed.fill("7")
    create(server, "/gone/a-app")
    wait_shown(page, ["/gone/a-app", "/live/c-app", "/live/d-app"], "5 app(s)")
    assert page.evaluate("document.activeElement.closest('tr').dataset.appId") == "/live/d-app"
    assert typed.input_value() == "7"
    typed.blur()
    response = httpx.delete(f"{server.url}/v2/groups/gone", timeout=30)
    assert response.status_code == 200, response.text
    wait_shown(page, ["/live/c-app", "/live/d-app", "/live/f-app"], "4 app(s) · page 1 of 2")

    paths = [path for _, path in requests]
    assert set(paths) <= LIVE_PATHS, paths  # no reload, no tree request
    assert page.evaluate("document.getElementById('notice').hidden"), "an error was shown"


def test_a_burst_of_creations_costs_a_few_coalesced_requests(
    server: RunningMarathon, page: Any
) -> None:
    create(server, "/burst/app-999")
    requests = open_live(page, f"{server.url}/ui/apps?q=burst&per=20")
    assert shown(page) == ["/burst/app-999"]
    started = time.monotonic()
    with httpx.Client() as client, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: create(server, f"/burst/app-{n:03}", client), range(200)))
    created_in = time.monotonic() - started

    wait_shown(page, [f"/burst/app-{n:03}" for n in range(20)], "201 app(s) · page 1 of 11")
    page.wait_for_timeout(2000)  # what the burst's deployments still send
    paths = [path for _, path in requests]
    fetches = [p for p in paths if p != "/ui/stream"]
    print(f"200 apps created in {created_in:.1f} s: {len(fetches)} fetches ({set(fetches)})")
    assert set(paths) <= LIVE_PATHS, paths
    # One request per 300 ms window at most while the burst and its deployments last
    # (a loaded machine creates slower, in more windows: 23 for 6.7 s, 70 for 22.7 s),
    # and fewer than one per app however slow.
    assert len(fetches) <= 10 + (created_in + 2) / 0.3, fetches
    assert len(fetches) < 200, fetches
