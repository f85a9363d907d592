"""Logging in to the UI with marathon-auth over real HTTP: the form, its failures and
lockout, the session cookie, where browsers are sent, cross-site posts, logout, a
standby, and what a user limited to /team-a sees (pages, /v2, the event stream)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import marathon_auth.plugin
import pytest
import trio
from marathon_auth.passwords import hash_password, hash_token

import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.testing.context import (
    CoreContext,
    ManualLeader,
    StandbyElection,
    memory_context,
)
from marathon_rest.server import serve_api
from marathon_ui.sessions import COOKIE_NAME

ADMIN = ("admin", "admin-secret")
TEAM_A = ("alice", "alice-secret")
TEAM_A_TOKEN = "alice-token-0123456789abcdefghijklmnopqrstuvwxyz"
#: What a browser sends when it navigates to a page.
NAVIGATE = {"accept": "text/html,application/xhtml+xml", "sec-fetch-mode": "navigate"}
_HASH = hash_password(TEAM_A[1])


def users_text(*, with_alice: bool = True) -> str:
    alice = f"""
[users.alice]
password = "{_HASH}"
groups = ["team-a"]
tokens = ["{hash_token(TEAM_A_TOKEN)}"]
"""
    return (
        (alice if with_alice else "")
        + """
[[rules]]
groups = ["team-a"]
actions = ["*"]
resources = ["/team-a/*", "Events"]
"""
    )


def auth_args(users: Path, *extra: str) -> list[str]:
    return [
        *("--http_port", "0", "--http_address", "127.0.0.1"),
        *("--auth_users", str(users), "--http_credentials", ":".join(ADMIN)),
        *extra,
    ]


async def start(
    nursery: trio.Nursery, args: list[str], *, election: StandbyElection | None = None
) -> tuple[CoreContext, str]:
    ctx = await memory_context(
        args,
        plugins={
            "rest": marathon_rest.plugin,
            "ui": marathon_ui.plugin,
            "auth": marathon_auth.plugin,
        },
        election=election,
    )
    ctx.plugins.configure(ctx.config)  # as `marathon` does before starting services
    if election is None:  # a standby's election is already lost: nothing to run
        await nursery.start(ctx.election.run, trio.sleep_forever)
        ManualLeader.attach(ctx)
    url: str = await nursery.start(serve_api, ctx)
    return ctx, url


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(users_text())
    return path


@pytest.fixture
async def server(nursery: trio.Nursery, users: Path) -> tuple[CoreContext, str]:
    ctx, url = await start(nursery, auth_args(users, "--auth_max_failures", "2"))
    async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=10) as admin:
        for app_id in ("/team-a/web", "/team-b/web"):
            body = {"id": app_id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}
            assert (await admin.post("/v2/apps", json=body)).status_code == 201
    return ctx, url


@pytest.fixture
async def browser(server: tuple[CoreContext, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client that behaves as the UI's pages do: same-origin Origin on its posts."""
    url = server[1]
    async with httpx.AsyncClient(base_url=url, headers={"origin": url}, timeout=10) as client:
        yield client


async def log_in(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await client.post("/ui/login", data=fields)


def app_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-app-id="([^"]+)"', page)


async def test_a_browser_is_sent_to_the_login_form_and_api_clients_get_401(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/ui/apps?q=web&sort=-mem", headers=NAVIGATE)
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=" + quote("/ui/apps?q=web&sort=-mem", "/")
    assert (
        (await browser.get("/ui/", headers=NAVIGATE))
        .headers["location"]
        .startswith("/ui/login?next=/ui/")
    )
    # The form itself needs no login, and is as locked down as every page.
    form = await browser.get(page.headers["location"])
    assert form.status_code == 200
    assert "content-security-policy" in form.headers
    assert 'name="next" value="/ui/apps?q=web&amp;sort=-mem"' in form.text
    assert (await browser.get("/ui/static/ui.css")).status_code == 200
    # Not pages: the script's fetches and stream, /v2, anything with credentials.
    for path, headers in [
        ("/ui/apps", {"accept": "text/html", "sec-fetch-mode": "cors"}),
        ("/ui/f/app-rows?id=/team-a/web", {"accept": "text/html"}),
        ("/ui/stream", {"accept": "text/event-stream"}),
        ("/v2/apps", NAVIGATE),
        ("/ui/apps", {**NAVIGATE, "authorization": "Basic YWxpY2U6bm8="}),
        ("/ui/apps", {"accept": "application/json"}),
    ]:
        answer = await browser.get(path, headers=headers)
        assert answer.status_code == 401, (path, headers)
        assert answer.headers["www-authenticate"].startswith("Basic"), path


async def test_failed_logins_show_the_plugins_message_alike_and_its_lockout(
    browser: httpx.AsyncClient,
) -> None:
    wrong = await log_in(browser, user="alice", password="not-it")
    nobody = await log_in(browser, user="nobody", password="not-it")
    for failed in (wrong, nobody):
        assert failed.status_code == 401
        assert "Invalid username or password." in failed.text
        assert "set-cookie" not in failed.headers
        assert "www-authenticate" not in failed.headers  # no Basic prompt over the form
        assert "not-it" not in failed.text
    # The same page whether the user exists or not (only the echoed name differs).
    assert wrong.text.replace("alice", "nobody") == nobody.text
    empty = await log_in(browser, user="", password="")
    assert empty.status_code == 400
    assert "Enter a user name and password, or an API token." in empty.text
    locked = await log_in(browser, user="alice", password=TEAM_A[1])  # after 2 failures
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many failed logins" in locked.text
    assert "set-cookie" not in locked.headers


async def test_a_password_login_sets_a_strict_session_cookie_and_shows_only_team_a(
    browser: httpx.AsyncClient, server: tuple[CoreContext, str]
) -> None:
    logged_in = await log_in(browser, user="alice", password=TEAM_A[1], next="/ui/apps?q=web")
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == "/ui/apps?q=web"
    cookie = logged_in.headers["set-cookie"]
    flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= flags
    assert "secure" not in flags  # plain HTTP here; HTTPS adds it (test_sessions.py)
    assert "samesite=strict" in cookie.lower() and "path=/;" in cookie.lower() + ";"
    value = browser.cookies[COOKIE_NAME]
    assert len(value) >= 43 and TEAM_A[1] not in cookie and "alice" not in cookie

    page = await browser.get("/ui/apps", headers=NAVIGATE)
    assert page.status_code == 200
    assert app_ids(page.text) == ["/team-a/web"]
    assert '<span id="session-user">alice</span>' in page.text
    assert 'action="/ui/logout"' in page.text
    assert (await browser.get("/ui/apps/team-b/web", headers=NAVIGATE)).status_code == 403
    rows = (await browser.get("/ui/f/app-rows?id=/team-a/web&id=/team-b/web")).text
    assert '<tr data-app-id="/team-b/web" data-gone>' in rows
    listed = (await browser.get("/v2/apps")).json()["apps"]
    assert [a["id"] for a in listed] == ["/team-a/web"]
    # The page's scale call with the cookie.
    scaled = await browser.put("/v2/apps/team-a/web?force=true", json={"instances": 2})
    assert scaled.status_code == 200, scaled.text
    assert (await browser.put("/v2/apps/team-b/web", json={"instances": 2})).status_code == 403


async def test_the_event_stream_and_the_ui_stream_carry_the_session_and_filter(
    browser: httpx.AsyncClient, server: tuple[CoreContext, str]
) -> None:
    assert (await log_in(browser, user="alice", password=TEAM_A[1])).status_code == 303
    url = server[1]
    for path in ("/v2/events", "/ui/stream?unnamed=1"):
        seen: list[str] = []
        async with browser.stream("GET", path, headers={"accept": "text/event-stream"}) as s:
            assert s.status_code == 200
            async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=10) as admin:
                for app_id in ("/team-b/web", "/team-a/web"):
                    answer = await admin.put(f"/v2/apps{app_id}?force=true", json={"mem": 20})
                    assert answer.status_code == 200
            with trio.fail_after(10):
                async for line in s.aiter_lines():
                    seen.append(line)
                    if line.startswith("data:") and '"/team-a/web"' in line:
                        break
        data = "\n".join(seen)
        assert "/team-a/web" in data and "/team-b" not in data, path


async def test_a_token_login_works_and_logout_ends_the_session(
    browser: httpx.AsyncClient,
) -> None:
    assert (await log_in(browser, token=TEAM_A_TOKEN)).status_code == 303
    old = browser.cookies[COOKIE_NAME]
    assert app_ids((await browser.get("/ui/apps", headers=NAVIGATE)).text) == ["/team-a/web"]
    out = await browser.post("/ui/logout")
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert COOKIE_NAME not in browser.cookies
    # The old cookie names nothing any more: the page sends the browser to log in,
    # the script's fetch gets a 401 without the Basic challenge.
    browser.cookies.set(COOKIE_NAME, old)
    page = await browser.get("/ui/apps", headers=NAVIGATE)
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
    fetched = await browser.get("/ui/f/app-rows?id=/team-a/web")
    assert fetched.status_code == 401
    assert "www-authenticate" not in fetched.headers
    assert (await log_in(browser, token="not-a-token")).status_code == 401


async def test_a_removed_user_is_out_at_once(
    browser: httpx.AsyncClient, server: tuple[CoreContext, str], users: Path
) -> None:
    ctx = server[0]
    assert (await log_in(browser, user="alice", password=TEAM_A[1])).status_code == 303
    assert (await browser.get("/ui/apps", headers=NAVIGATE)).status_code == 200
    users.write_text(users_text(with_alice=False))
    marathon_auth.plugin.marathon_configure(ctx.config, ctx.plugins)  # the new users file
    page = await browser.get("/ui/apps", headers=NAVIGATE)
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")


@pytest.mark.parametrize(
    "next_page",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/ui/logout",
        "\t//evil.example",
    ],
)
async def test_no_open_redirect(browser: httpx.AsyncClient, next_page: str) -> None:
    form = await browser.get("/ui/login", params={"next": next_page})
    assert "evil" not in form.text
    answer = await log_in(browser, user="alice", password=TEAM_A[1], next=next_page)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/apps"


async def test_cross_site_login_and_logout_posts_are_refused(
    browser: httpx.AsyncClient,
) -> None:
    evil = {"origin": "https://evil.example"}
    posted = await browser.post(
        "/ui/login", data={"user": "alice", "password": TEAM_A[1]}, headers=evil
    )
    assert posted.status_code == 403 and "set-cookie" not in posted.headers
    assert (await log_in(browser, user="alice", password=TEAM_A[1])).status_code == 303
    assert (await browser.post("/ui/logout", headers=evil)).status_code == 403
    assert (await browser.get("/ui/apps", headers=NAVIGATE)).status_code == 200  # still in


async def test_without_an_auth_plugin_the_login_page_says_so_and_moves_on(
    nursery: trio.Nursery,
) -> None:
    ctx = await memory_context(
        ["--http_port", "0", "--http_address", "127.0.0.1"],
        plugins={"rest": marathon_rest.plugin, "ui": marathon_ui.plugin},
    )
    ctx.plugins.configure(ctx.config)
    # The UI's session hook is not enabled: nothing authenticates, so the API stays
    # on loopback unless told otherwise.
    assert not ctx.access.authenticates
    await nursery.start(ctx.election.run, trio.sleep_forever)
    url: str = await nursery.start(serve_api, ctx)
    async with httpx.AsyncClient(base_url=url, headers={"origin": url}) as client:
        form = await client.get("/ui/login?next=/ui/deployments")
        assert form.status_code == 200
        assert "No authentication plugin is installed" in form.text
        assert 'http-equiv="refresh" content="3; url=/ui/deployments"' in form.text
        assert "<form" not in form.text
        posted = await log_in(client, user="alice", password="x")
        assert "No authentication plugin is installed" in posted.text
        assert "set-cookie" not in posted.headers
        assert (await client.get("/ui/apps", headers=NAVIGATE)).status_code == 200


async def test_through_a_standby_the_leaders_session_works(
    nursery: trio.Nursery, server: tuple[CoreContext, str], users: Path
) -> None:
    leader_ctx, leader = server
    standby_ctx, standby = await start(
        nursery, auth_args(users), election=StandbyElection(leader.removeprefix("http://"))
    )
    async with httpx.AsyncClient(base_url=standby, headers={"origin": standby}) as browser:
        # No cookie: the standby itself sends the browser to the (leader's) form.
        page = await browser.get("/ui/apps", headers=NAVIGATE)
        assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
        assert (await browser.get("/ui/login")).status_code == 200
        logged_in = await log_in(browser, user="alice", password=TEAM_A[1])
        assert logged_in.status_code == 303, logged_in.text
        # The leader made the session; the standby keeps none.
        assert [len(h.store) for h in leader_ctx.call_extension("marathon_ui_login")] == [1]
        assert [len(h.store) for h in standby_ctx.call_extension("marathon_ui_login")] == [0]
        # The cookie names a session only the leader knows: forwarded, not refused.
        page = await browser.get("/ui/apps", headers=NAVIGATE)
        assert page.status_code == 200, page.text
        assert app_ids(page.text) == ["/team-a/web"]
        assert [a["id"] for a in (await browser.get("/v2/apps")).json()["apps"]] == ["/team-a/web"]
        scaled = await browser.put("/v2/apps/team-a/web?force=true", json={"instances": 2})
        assert scaled.status_code == 200, scaled.text
        assert (await browser.post("/ui/logout")).status_code == 303
        page = await browser.get("/ui/apps", headers=NAVIGATE)
        assert page.status_code == 303
        # A made-up cookie is forwarded too, and the leader refuses it.
        browser.cookies.set(COOKIE_NAME, "made-up")
        fetched = await browser.get("/v2/apps")
        assert fetched.status_code == 401
    # Without a cookie, a standby still refuses anonymous callers itself.
    async with httpx.AsyncClient(base_url=standby) as anonymous:
        refused = await anonymous.get("/v2/apps")
        assert refused.status_code == 401


async def test_logins_and_logouts_are_audited_without_credentials(
    browser: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "marathon.audit")
    assert (await log_in(browser, user="alice", password="not-it")).status_code == 401
    assert (await log_in(browser, user="alice", password=TEAM_A[1])).status_code == 303
    assert (await browser.post("/ui/logout")).status_code == 303
    with trio.fail_after(5):  # recorded once the answer is sent
        while "POST '/ui/logout'" not in caplog.text:
            await trio.sleep(0.01)
    audit = caplog.text
    assert "user=None client=127.0.0.1 forwarded_for=None POST '/ui/login' -> 401" in audit
    assert "user='alice' client=127.0.0.1 forwarded_for=None POST '/ui/login' -> 303" in audit
    assert "user='alice' client=127.0.0.1 forwarded_for=None POST '/ui/logout' -> 303" in audit
    assert "not-it" not in audit and TEAM_A[1] not in audit
