"""Logging in to the UI in Debian's Chromium (Playwright, never a downloaded browser)
against ``marathon --master local`` with marathon-auth: a user limited to /team-a logs
in with a password and with a bearer token, sees only /team-a's apps, scales one from
the apps page and watches it run, logs out and is sent to the login form.

Every request of the page must stay on 127.0.0.1 (others are aborted and fail the test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from marathon_auth.passwords import hash_password, hash_token

from marathon_core.testing.processes import (
    RunningMarathon,
    local_cluster_args,
    running_marathon,
    searchable_state_dir,
    wait_for,
)

pytestmark = [pytest.mark.processes, pytest.mark.cluster]

LIVE_TIMEOUT_MS = 60_000
ADMIN = ("admin", "admin-secret")
ALICE = ("alice", "alice-secret")
ALICE_TOKEN = "alice-token-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMarathon]:
    users = tmp_path_factory.mktemp("auth") / "users.toml"
    users.write_text(
        f"""
[users.alice]
password = "{hash_password(ALICE[1])}"
groups = ["team-a"]
tokens = ["{hash_token(ALICE_TOKEN)}"]

[[rules]]
groups = ["team-a"]
actions = ["*"]
resources = ["/team-a/*", "Events"]
"""
    )
    with (
        searchable_state_dir() as state_dir,
        running_marathon(
            *local_cluster_args(1, agent_resources="cpus:4;mem:2048;disk:1000;ports:[31000-31100]"),
            *("--auth_users", str(users), "--http_credentials", ":".join(ADMIN)),
            state_dir=state_dir,
        ) as running,
    ):
        for app_id in ("/team-a/web", "/team-b/web"):
            body = {"id": app_id, "cmd": "sleep 3600", "cpus": 0.1, "mem": 16, "instances": 1}
            created = httpx.post(f"{running.url}/v2/apps", json=body, auth=ADMIN, timeout=10)
            assert created.status_code == 201, created.text
        yield running
        assert running.stop() == 0


@pytest.fixture
def page(page: Any) -> Iterator[Any]:
    """The shared loopback-only tab, which must never ask the user anything (a Basic
    prompt, a confirm)."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield page
    assert dialogs == [], "the page asked something"


def running_tasks(server: RunningMarathon, app_id: str) -> int:
    answer = httpx.get(f"{server.url}/v2/apps{app_id}", auth=ADMIN, timeout=5)
    return int(answer.json()["app"]["tasksRunning"]) if answer.status_code == 200 else 0


def path_of(page: Any) -> str:
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def live(page: Any) -> bool:
    return bool(page.evaluate("document.getElementById('stream-state').dataset.state === 'live'"))


def until(page: Any, condition: Any, what: str, timeout: float = 15) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(100)


def log_out_and_find_the_form(page: Any, server: RunningMarathon) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/ui/login")
    assert page.context.cookies() == []
    page.goto(f"{server.url}/ui/apps")
    assert path_of(page) == "/ui/login?next=/ui/apps"
    assert page.locator("#login-form").is_visible()


def test_password_login_scale_and_logout(
    server: RunningMarathon, page: Any, screenshots: Path
) -> None:
    wait_for(lambda: running_tasks(server, "/team-a/web") == 1, timeout=60, what="1 task")
    page.goto(f"{server.url}/ui/apps?q=web")
    assert path_of(page) == "/ui/login?next=/ui/apps%3Fq%3Dweb"
    page.locator("input[name=user]").fill(ALICE[0])
    page.locator("input[name=password]").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    assert page.locator("#login-error").inner_text() == "Invalid username or password."
    assert page.locator("input[name=user]").input_value() == ALICE[0]
    page.locator("input[name=password]").fill(ALICE[1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/apps?q=web")
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert ALICE[1] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # the page's script cannot read it

    # Only /team-a; the stream (EventSource) and the row fetches carry the cookie.
    rows = page.locator("tr[data-app-id]")
    assert [rows.nth(i).get_attribute("data-app-id") for i in range(rows.count())] == [
        "/team-a/web"
    ]
    assert page.locator("#session-user").inner_text() == ALICE[0]
    until(page, lambda: live(page), "the stream to open")
    fetched: list[tuple[str, int]] = []
    page.on("response", lambda r: fetched.append((urlsplit(r.url).path, r.status)))
    row = page.locator('tr[data-app-id="/team-a/web"]')
    row.locator("input[name=instances]").fill("2")
    row.get_by_role("button", name="Scale").click()
    row.locator("td.running").filter(has_text="2/2").wait_for(timeout=LIVE_TIMEOUT_MS)
    page.screenshot(path=str(screenshots / "login-apps.png"), full_page=True)
    assert ("/v2/apps/team-a/web", 200) in fetched
    assert ("/ui/f/app-rows", 200) in fetched
    assert not [f for f in fetched if f[1] >= 400], fetched
    assert running_tasks(server, "/team-a/web") == 2

    # The app page of another team's app: 403, not a login form.
    denied = page.goto(f"{server.url}/ui/apps/team-b/web")
    assert denied is not None and denied.status == 403
    page.goto(f"{server.url}/ui/events")
    assert path_of(page) == "/ui/events"
    until(page, lambda: live(page), "the event tail's stream to open")
    for app_id in ("/team-b/web", "/team-a/web"):  # /team-a's last: once it shows, all did
        changed = httpx.put(
            f"{server.url}/v2/apps{app_id}?force=true", json={"mem": 24}, auth=ADMIN, timeout=10
        )
        assert changed.status_code == 200, changed.text
    tail = page.locator("#event-rows")
    tail.locator("tr", has_text="/team-a/web").first.wait_for(timeout=LIVE_TIMEOUT_MS)
    assert "/team-b" not in tail.inner_text()
    page.screenshot(path=str(screenshots / "login-events.png"), full_page=True)
    log_out_and_find_the_form(page, server)
    page.screenshot(path=str(screenshots / "login-form.png"), full_page=True)


def test_token_login_and_logout(server: RunningMarathon, page: Any, screenshots: Path) -> None:
    page.goto(f"{server.url}/ui/deployments")
    assert path_of(page) == "/ui/login?next=/ui/deployments"
    page.locator("input[name=token]").fill(ALICE_TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/deployments")
    page.goto(f"{server.url}/ui/apps")
    rows = page.locator("tr[data-app-id]")
    assert [rows.nth(i).get_attribute("data-app-id") for i in range(rows.count())] == [
        "/team-a/web"
    ]
    until(page, lambda: live(page), "the stream to open")
    log_out_and_find_the_form(page, server)
