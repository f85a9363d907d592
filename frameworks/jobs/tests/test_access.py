"""``--http_credentials``, the bind address, cross-site writes, and a standby's forwarding
(real HTTP on loopback from the standby to the leader)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from marathon_core.framework import LeaderElection, MemoryStorage, Op, SoloElection
from marathon_core.plugins import get_plugin_host
from marathon_jobs.access import Guard, is_loopback, parse_credentials
from marathon_jobs.api import Node, create_app
from marathon_jobs.book import Book
from marathon_jobs.cli import bind_address, parse_args
from marathon_jobs.tasks import Placement

JOB = {"name": "tick", "command": "true", "schedule": "R/2030-01-01T00:00:00Z/PT1M"}
RIGHT, WRONG = ("ops", "s3cret:with:colons"), ("ops", "guess")


class Follower(LeaderElection):
    """A standby that knows who leads (the election itself is not under test here)."""

    def __init__(self, leader_id: str) -> None:
        super().__init__("127.0.0.1:1")
        self._set(leader_id=leader_id, is_leader=False)

    async def run(self, lead: Any, *args: Any, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        raise AssertionError("a standby that forwards requests never runs for leadership here")

    async def abdicate(self) -> bool:
        return False

    def fence(self) -> list[Op]:
        raise AssertionError("a standby wrote: it must forward writes to the leader")


def placement() -> Placement:
    host = get_plugin_host()
    return Placement(host.constraint_operators(), host.container_runtimes())


@pytest.fixture
async def leader() -> AsyncIterator[Callable[[str | None], Any]]:
    """Serves a leading instance over HTTP on loopback; gives its ``host:port``."""
    async with trio.open_nursery() as nursery:

        async def start(credentials: str | None) -> str:
            node = Node(placement=placement(), election=SoloElection("leader"))
            book = Book(MemoryStorage(), list)

            async def lead() -> None:
                node.book = book
                await trio.sleep_forever()

            assert node.election is not None
            await nursery.start(node.election.run, lead)
            config = HypercornConfig()
            config.bind = ["127.0.0.1:0"]
            config.accesslog = None
            app = Guard(create_app(node), parse_credentials(credentials), realm="jobs")
            binds: list[str] = await nursery.start(serve, app, config)
            return binds[0].removeprefix("http://")

        yield start
        nursery.cancel_scope.cancel()


def standby(leader_id: str, credentials: str | None) -> httpx.AsyncClient:
    node = Node(placement=placement(), election=Follower(leader_id))
    app = Guard(create_app(node), parse_credentials(credentials), realm="jobs")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://standby")


async def test_every_request_needs_the_credentials(leader: Any) -> None:
    url = f"http://{await leader('ops:s3cret:with:colons')}"
    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.get("/v1/scheduler/jobs")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="jobs"'
        assert (await client.get("/v1/scheduler/leader", auth=WRONG)).status_code == 401
        wrong_user = ("root", RIGHT[1])
        assert (await client.get("/v1/scheduler/jobs", auth=wrong_user)).status_code == 401
        broken = {"Authorization": "Basic not-base64!"}
        assert (await client.get("/v1/scheduler/jobs", headers=broken)).status_code == 401
        assert (await client.post("/v1/scheduler/iso8601", json=JOB)).status_code == 401
        assert (await client.get("/v1/scheduler/jobs", auth=RIGHT)).json() == []


async def test_a_standby_checks_and_forwards_the_credentials_the_leader_checks_again(
    leader: Any,
) -> None:
    leader_id = await leader("ops:s3cret:with:colons")
    async with standby(leader_id, "ops:s3cret:with:colons") as client:
        refused = await client.post("/v1/scheduler/iso8601", json=JOB, auth=WRONG)
        assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]
        done = await client.post("/v1/scheduler/iso8601", json=JOB, auth=RIGHT)
        assert done.status_code == 204, done.text
        assert [j["name"] for j in (await client.get("/v1/scheduler/jobs", auth=RIGHT)).json()]
    # A standby that accepts other credentials than the leader does not vouch for them.
    async with standby(leader_id, "ops:guess") as client:
        assert (await client.get("/v1/scheduler/jobs", auth=WRONG)).status_code == 401


async def test_cross_site_writes_are_refused(leader: Any) -> None:
    url = f"http://{await leader('ops:s3cret:with:colons')}"
    evil = {"Origin": "https://evil.example"}
    async with httpx.AsyncClient(base_url=url, auth=RIGHT) as client:
        refused = await client.post("/v1/scheduler/iso8601", json=JOB, headers=evil)
        assert refused.status_code == 403 and "evil.example" in refused.json()["message"]
        assert (await client.delete("/v1/scheduler/job/tick", headers=evil)).status_code == 403
        assert (await client.get("/v1/scheduler/jobs", headers=evil)).status_code == 200
        own = await client.post("/v1/scheduler/iso8601", json=JOB, headers={"Origin": url})
        assert own.status_code == 204, own.text
    # A browser on the standby's page writes through the standby: its own origin there.
    async with standby(url.removeprefix("http://"), None) as client:
        answer = await client.put(
            "/v1/scheduler/job/tick", headers={"Origin": "http://standby"}, auth=RIGHT
        )
        assert answer.status_code == 204, answer.text
        assert (await client.put("/v1/scheduler/job/tick", headers=evil)).status_code == 403


def test_the_credentials_flag() -> None:
    assert parse_credentials(None) is None
    credentials = parse_credentials("ops:a:b")
    assert credentials is not None and credentials.user == "ops"
    assert "a:b" not in repr(credentials)
    for bad in ("ops", ":pw", "ops:"):
        with pytest.raises(ValueError, match="user:password"):
            parse_credentials(bad)
    with pytest.raises(SystemExit):
        parse_args(["--http_credentials", "nopassword"])
    assert parse_args(["--http_credentials", "ops:pw"]).http_realm == "Chronos"


def test_the_bind_address(caplog: pytest.LogCaptureFixture) -> None:
    credentials = parse_credentials("ops:pw")
    with caplog.at_level(logging.WARNING, logger="marathon_jobs"):
        assert bind_address(None, None) == "127.0.0.1"
        assert bind_address(None, credentials) == "0.0.0.0"
        assert bind_address("10.0.0.5", credentials) == "10.0.0.5"
        assert bind_address("::1", None) == "::1"
        assert not caplog.records
        assert bind_address("10.0.0.5", None) == "10.0.0.5"
    (warning,) = caplog.records
    assert "10.0.0.5 without --http_credentials" in warning.getMessage()
    assert is_loopback("localhost") and not is_loopback("127.0.0.2")
