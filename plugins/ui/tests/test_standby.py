"""Behind a standby: the UI is the leader's, forwarded like /v2, and the page's own
writes pass the cross-site check on both hops."""

from __future__ import annotations

import re

import httpx
import trio

import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.testing.context import StandbyElection, memory_context
from marathon_rest.server import serve_api


async def test_a_standby_serves_the_leaders_ui(
    client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    body = {"id": "/ha/web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}
    assert (await client.post("/v2/apps", json=body)).status_code == 201
    leader = client.base_url.netloc.decode()
    standby = await memory_context(
        ["--http_port", "0", "--http_address", "127.0.0.1"],
        plugins={"rest": marathon_rest.plugin, "ui": marathon_ui.plugin},
        election=StandbyElection(leader),
    )
    url: str = await nursery.start(serve_api, standby)
    async with httpx.AsyncClient(base_url=url, timeout=10) as browser:
        page = await browser.get("/ui/apps")
        assert re.findall(r'<tr data-app-id="([^"]+)"', page.text) == ["/ha/web"]
        assert page.headers["x-marathon-leader"] == f"http://{leader}"
        # The page's scale call, from the standby's origin, reaches the leader.
        scaled = await browser.put(
            "/v2/apps/ha/web?force=true", json={"instances": 2}, headers={"origin": url}
        )
        assert scaled.status_code == 200, scaled.text
    assert (await client.get("/v2/apps/ha/web")).json()["app"]["instances"] == 2
