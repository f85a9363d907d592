"""marathon-auth behind marathon-rest over real HTTP on loopback: what each user sees,
the event stream, bearer tokens and the lockout of guessers."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from marathon_auth.passwords import verify_password
from marathon_core.model.events import app_terminated_event, group_change_success, make_event
from marathon_core.model.ids import PathId, Timestamp

from .conftest import ADMIN, PROD, READER, READER_TOKEN, start_api  # type: ignore[import-not-found]

APP = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def seed(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=basic(*ADMIN)) as admin:
        for app_id in ("/prod/web", "/dev/api"):
            assert (await admin.post("/v2/apps", json={"id": app_id, **APP})).status_code == 201


async def test_listings_show_only_what_the_caller_may_view(api_url: str) -> None:
    await seed(api_url)
    async with httpx.AsyncClient(base_url=api_url, headers=basic(*PROD)) as prod:
        apps = (await prod.get("/v2/apps")).json()["apps"]
        assert [a["id"] for a in apps] == ["/prod/web"]
        root = (await prod.get("/v2/groups", params={"embed": "group.apps"})).json()
        assert [g["id"] for g in root["groups"]] == ["/prod"]
        assert [a["id"] for a in root["groups"][0]["apps"]] == ["/prod/web"]
        deployments = (await prod.get("/v2/deployments")).json()
        assert [d["affectedApps"] for d in deployments] == [["/prod/web"]]
        assert (await prod.get("/v2/apps/dev/api")).status_code == 403
    async with httpx.AsyncClient(base_url=api_url, headers=basic(*READER)) as reader:
        apps = (await reader.get("/v2/apps")).json()["apps"]
        assert [a["id"] for a in apps] == ["/dev/api", "/prod/web"]


async def read_events(url: str, headers: dict[str, str], until: str, into: list[Any]) -> None:
    """Collect the stream's events (type and payload) up to one whose JSON holds ``until``."""
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client,
        client.stream("GET", "/v2/events") as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                into.append(json.loads(line[len("data: ") :]))
                if until in line:
                    return


async def test_the_event_stream_shows_only_events_about_viewable_apps(
    nursery: trio.Nursery, auth_args: list[str]
) -> None:
    ctx, url = await start_api(nursery, auth_args)
    seen: dict[str, list[Any]] = {"reader": [], "produser": []}
    async with trio.open_nursery() as readers:
        for (user, password), events in ((READER, seen["reader"]), (PROD, seen["produser"])):
            readers.start_soon(read_events, url, basic(user, password), "/prod/last", events)
        with trio.fail_after(30):  # both subscribed: each stream starts with its attach event
            while not (seen["reader"] and seen["produser"]):
                await trio.sleep(0.05)
        version = Timestamp.parse("2026-01-01T00:00:00.000Z")
        for event in (
            app_terminated_event(PathId.parse("/dev/api")),
            app_terminated_event(PathId.parse("/prod/web")),
            group_change_success(PathId.parse("/dev"), version),
            group_change_success(PathId.parse("/prod"), version),
            make_event("instance_changed_event", runSpecId="/dev/api", condition="Killed"),
            make_event("instance_changed_event", runSpecId="/prod/web", condition="Killed"),
            app_terminated_event(PathId.parse("/prod/last")),
        ):
            ctx.events.publish(event)
    about = {
        user: [
            e.get("appId") or e.get("groupId") or e.get("runSpecId")
            for e in events
            if e["eventType"] != "event_stream_attached"
        ]
        for user, events in seen.items()
    }
    assert about["reader"] == [
        *("/dev/api", "/prod/web", "/dev", "/prod", "/dev/api", "/prod/web", "/prod/last")
    ]
    assert about["produser"] == ["/prod/web", "/prod", "/prod/web", "/prod/last"]


async def test_bearer_tokens_authenticate(client: httpx.AsyncClient) -> None:
    ok = await client.get("/v2/apps", headers={"Authorization": f"Bearer {READER_TOKEN}"})
    assert ok.status_code == 200
    bad = await client.get("/v2/apps", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.json() == {"message": "Invalid username or password."}


async def test_failed_logins_are_limited_per_client_address(
    nursery: trio.Nursery, auth_args: list[str]
) -> None:
    _, url = await start_api(nursery, [*auth_args, "--auth_max_failures", "3"])
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(3):
            wrong = await client.get("/v2/info", headers=basic(READER[0], "guess"))
            assert wrong.status_code == 401
        locked = await client.get("/v2/info", headers=basic(*READER))  # right, but too late
        assert locked.status_code == 429
        retry_after = int(locked.headers["retry-after"])
        assert 55 <= retry_after <= 60
        assert locked.json() == {
            "message": f"Too many failed logins from 127.0.0.1; retry in {retry_after} seconds."
        }
        # Without credentials a caller is only challenged: that is no login attempt.
        assert (await client.get("/v2/info")).status_code == 401
    other_address = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=url, transport=other_address) as elsewhere:
        assert (await elsewhere.get("/v2/info", headers=basic(*READER))).status_code == 200


async def test_without_credential_flags_the_plugin_stays_out(nursery: trio.Nursery) -> None:
    ctx, url = await start_api(nursery, [])
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/v2/apps")).status_code == 200
    # Installed but not configured is no authenticator: the API keeps to loopback.
    assert not ctx.plugins.has_authenticator and not ctx.plugins.has_authorizer


async def test_configured_it_is_the_authenticator(
    nursery: trio.Nursery, auth_args: list[str]
) -> None:
    ctx, _ = await start_api(nursery, auth_args)
    assert ctx.plugins.has_authenticator and ctx.plugins.has_authorizer
    assert "auth.enabled" in {p.name for p in ctx.plugins.plugins()}


async def test_hashes_in_the_users_file_log_in(
    nursery: trio.Nursery, tmp_path: Path, users_file: Path
) -> None:
    _, url = await start_api(nursery, ["--auth_users", str(users_file)])
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/v2/info", headers=basic(*READER))).status_code == 200
        assert (await client.get("/v2/info", headers=basic(*ADMIN))).status_code == 401


@pytest.mark.alone
async def test_password_checks_run_off_the_event_loop(
    nursery: trio.Nursery, auth_args: list[str], monkeypatch: Any
) -> None:
    """scrypt (a first login, or any unknown user's) runs in a worker thread; while
    several run the event loop keeps serving."""
    checked_in: list[bool] = []

    def verify(password: str, stored: str) -> bool:
        checked_in.append(threading.current_thread() is threading.main_thread())
        return verify_password(password, stored)

    monkeypatch.setattr("marathon_auth.authenticator.verify_password", verify)
    _, url = await start_api(nursery, auth_args)
    longest_pause = 0.0

    async def watch_the_loop() -> None:
        nonlocal longest_pause
        while True:
            before = trio.current_time()
            await trio.sleep(0.001)
            longest_pause = max(longest_pause, trio.current_time() - before - 0.001)

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        statuses: list[int] = []

        async def login(user: str, password: str) -> None:
            response = await client.get("/v2/apps", headers=basic(user, password))
            statuses.append(response.status_code)

        async with trio.open_nursery() as logins:
            logins.start_soon(watch_the_loop)
            async with trio.open_nursery() as batch:
                batch.start_soon(login, *READER)
                batch.start_soon(login, *PROD)
                for n in range(4):
                    batch.start_soon(login, f"nobody-{n}", "guess")
            logins.cancel_scope.cancel()
    assert sorted(statuses) == [200, 200, 401, 401, 401, 401]
    assert len(checked_in) == 6 and not any(checked_in)
    # on the loop, the six scrypts (about 60 ms each) held it 180-230 ms at a time here
    assert longest_pause < 0.1, longest_pause
