"""Audit records on the event stream reach only callers who may view the system's
configuration: they name users, addresses and apps of everyone."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from .conftest import ADMIN, PROD, READER, start_api  # type: ignore[import-not-found]
from .test_http import basic, read_events  # type: ignore[import-not-found]


async def test_audit_events_reach_only_those_who_may_view_the_system_config(
    nursery: trio.Nursery, auth_args: list[str]
) -> None:
    _, url = await start_api(nursery, auth_args)
    seen: dict[str, list[Any]] = {"admin": [], "produser": []}
    async with trio.open_nursery() as readers:
        for (user, password), events in ((ADMIN, seen["admin"]), (PROD, seen["produser"])):
            readers.start_soon(read_events, url, basic(user, password), "/prod/last", events)
        with trio.fail_after(30):  # both subscribed: each stream starts with its attach event
            while not (seen["admin"] and seen["produser"]):
                await trio.sleep(0.05)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            app = {"cmd": "sleep 1", "mem": 16, "cpus": 0.1}
            refused = await client.post("/v2/apps", json={"id": "/prod/x", **app})
            assert refused.status_code == 401
            readonly = await client.post(
                "/v2/apps", json={"id": "/prod/y", **app}, headers=basic(*READER)
            )
            assert readonly.status_code == 403
            last = await client.post(
                "/v2/apps", json={"id": "/prod/last", **app}, headers=basic(*PROD)
            )
            assert last.status_code == 201
    audits = {
        user: [(e["status"], e["user"]) for e in events if e["eventType"] == "api_audit_event"]
        for user, events in seen.items()
    }
    assert audits["admin"][:2] == [(401, None), (403, "reader")]
    assert audits["produser"] == []
    assert "/prod/last" in str(seen["produser"][-1])  # the stream went on past them
