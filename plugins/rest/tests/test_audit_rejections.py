"""Rejections before authentication (401, 429, 413, 431) and failed logins are audited,
throttled per client address so that a flood cannot fill the disk."""

from __future__ import annotations

import logging

import httpx
import pytest

from marathon_core import hookimpl
from marathon_core.contracts.auth import HttpRequest, Identity
from marathon_core.errors import NotAuthenticatedError
from marathon_core.testing.context import CoreContext
from marathon_rest.audit import RejectionThrottle

GOOD = "Bearer good-token"
BAD = {"Authorization": "Basic YWRtaW46aHVudGVyMg=="}  # admin:hunter2


class TokenAuth:
    """Accepts one bearer token; refuses other credentials as a password check would."""

    @hookimpl
    def marathon_authenticate(self, request: HttpRequest) -> Identity | None:
        header = request.headers.get("authorization")
        if header is None:
            raise NotAuthenticatedError("Not Authenticated")
        if header != GOOD:
            raise NotAuthenticatedError("Invalid username or password.")
        return Identity("alice")


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "marathon.audit"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_records_one_per_address_and_interval_then_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="marathon.audit")
    clock = Clock()
    throttle = RejectionThrottle(interval=60, max_addresses=2, clock=clock)
    assert throttle.admit("10.0.0.1", 401)
    assert [throttle.admit("10.0.0.1", status) for status in (401, 401, 429)] == [False] * 3
    assert throttle.admit("10.0.0.2", 413)  # another address has its own interval
    assert audit_lines(caplog) == []
    clock.now += 60
    throttle.flush()
    assert audit_lines(caplog) == [
        "client=10.0.0.1: 3 more rejected requests within 60 s of the one recorded (401: 2, 429: 1)"
    ]  # 10.0.0.2 had nothing more: no summary
    assert throttle.admit("10.0.0.1", 401)  # a new interval starts with a full record
    # Past max_addresses the oldest interval is summarized early.
    throttle.admit("10.0.0.1", 401)
    assert throttle.admit("10.0.0.3", 431) and throttle.admit("10.0.0.4", 431)
    assert audit_lines(caplog)[-1].startswith("client=10.0.0.1: 1 more rejected")


@pytest.mark.parametrize("extra_plugins", [{"auth": TokenAuth()}])
async def test_failed_logins_are_audited_without_the_password_and_throttled(
    client: httpx.AsyncClient, api_context: CoreContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marathon.audit")
    with api_context.events.subscribe(event_types={"api_audit_event"}) as events:
        assert (await client.get("/v2/apps")).status_code == 401  # no credentials: no login
        assert (await client.get("/v2/apps", headers=BAD)).status_code == 401
        event = (await events.receive()).payload
        for _ in range(20):  # a flood: counted, not recorded one by one
            assert (await client.post("/v2/apps", json={}, headers=BAD)).status_code == 401
        ok = await client.get("/v2/apps", headers={"Authorization": GOOD})
        assert ok.status_code == 200
        assert events.backlog == 0
    assert (event["user"], event["method"], event["status"]) == (None, "GET", 401)
    (line,) = audit_lines(caplog)
    assert line == (
        "user=None client=127.0.0.1 forwarded_for=None GET '/v2/apps' -> 401 "
        "deployment=None version=None login=failed"
    )
    assert "hunter2" not in line and BAD["Authorization"] not in line


@pytest.mark.parametrize(
    "api_args", [["--http_max_request_body", "64", "--http_max_header_size", "2048"]]
)
async def test_oversized_writes_are_audited(
    client: httpx.AsyncClient, api_context: CoreContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marathon.audit")
    with api_context.events.subscribe(event_types={"api_audit_event"}) as events:
        too_large = await client.post("/v2/apps", content=b"x" * 100)
        assert too_large.status_code == 413
        first = (await events.receive()).payload
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=10) as other:
        # The same address within the interval: counted, not recorded (no event).
        headers = {"X-Padding": "p" * 4000}
        assert (await other.put("/v2/apps/a", json={}, headers=headers)).status_code == 431
    assert (first["method"], first["uri"], first["status"]) == ("POST", "/v2/apps", 413)
    assert audit_lines(caplog) == [
        "user=None client=127.0.0.1 forwarded_for=None POST '/v2/apps' -> 413 "
        "deployment=None version=None"
    ]
