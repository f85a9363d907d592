"""Every write through the API leaves an audit line (``marathon.audit``) and an
``api_audit_event``, whatever its result; reads leave none."""

from __future__ import annotations

import logging

import httpx
import pytest

from marathon_core import hookimpl
from marathon_core.contracts.auth import HttpRequest, Identity
from marathon_core.testing.context import CoreContext

APP = {"id": "/audit/web", "cmd": "sleep 100", "env": {"PASSWORD": "hunter2"}}


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "marathon.audit"]


async def test_a_write_is_audited_with_who_where_what_and_result(
    client: httpx.AsyncClient, api_context: CoreContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marathon.audit")
    with api_context.events.subscribe(event_types={"api_audit_event"}) as events:
        created = await client.post("/v2/apps?force=true", json=APP)
        assert created.status_code == 201
        await client.get("/v2/apps")  # reads are not audited
        event = (await events.receive()).payload
        assert events.backlog == 0
    deployment = created.headers["marathon-deployment-id"]
    assert event["user"] == "anonymous"
    assert event["clientIp"] == "127.0.0.1"
    assert event["forwardedFor"] is None
    assert (event["method"], event["uri"], event["status"]) == (
        "POST",
        "/v2/apps?force=true",
        201,
    )
    assert event["deploymentId"] == deployment
    assert event["version"] == created.json()["version"]
    (line,) = audit_lines(caplog)
    assert line == (
        f"user='anonymous' client=127.0.0.1 forwarded_for=None POST '/v2/apps?force=true' "
        f"-> 201 deployment={deployment} version={event['version']}"
    )
    assert "hunter2" not in line


async def test_a_failed_write_is_audited_too(
    client: httpx.AsyncClient, api_context: CoreContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marathon.audit")
    with api_context.events.subscribe(event_types={"api_audit_event"}) as events:
        missing = await client.delete("/v2/apps/nothing/here")
        assert missing.status_code == 404
        event = (await events.receive()).payload
    assert (event["method"], event["uri"], event["status"]) == (
        "DELETE",
        "/v2/apps/nothing/here",
        404,
    )
    assert event["deploymentId"] is None


async def test_forged_log_lines_and_forwarding_show_as_such(
    client: httpx.AsyncClient, api_context: CoreContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marathon.audit")
    with api_context.events.subscribe(event_types={"api_audit_event"}) as events:
        await client.delete(
            "/v2/apps/a%0Auser=admin%20-%3E%20200", headers={"X-Forwarded-For": "10.1.2.3"}
        )
        await events.receive()  # recorded once the answer is out
    (line,) = audit_lines(caplog)
    assert "\n" not in line
    assert "forwarded_for='10.1.2.3'" in line


class RejectEveryone:
    @hookimpl
    def marathon_authenticate(self, request: HttpRequest) -> Identity | None:
        return Identity("intruder", authenticated=False)


@pytest.mark.parametrize("extra_plugins", [{"auth": RejectEveryone()}])
async def test_an_unauthenticated_write_is_audited_without_a_user(
    client: httpx.AsyncClient, api_context: CoreContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marathon.audit")
    with api_context.events.subscribe(event_types={"api_audit_event"}) as events:
        refused = await client.post("/v2/apps", json=APP)
        assert refused.status_code == 401
        event = (await events.receive()).payload
    assert (event["user"], event["status"]) == (None, 401)
    assert audit_lines(caplog)[0].startswith("user=None client=127.0.0.1")
