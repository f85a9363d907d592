"""HTTP-level answers of /api/v1/scheduler, as real Mesos 1.x gives them."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from marathon_mesos_local.testing import RecordIODecoder

SUBSCRIBE = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def http(master):
    async with httpx.AsyncClient(base_url=master.url, timeout=10) as client:
        yield client


async def post(http, body, headers=JSON):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post("/api/v1/scheduler", content=data, headers=headers)


async def subscribe_raw(http, body=SUBSCRIBE):
    """SUBSCRIBE and read until the first event; returns (response headers, first event)."""
    decoder = RecordIODecoder()
    async with http.stream("POST", "/api/v1/scheduler", json=body) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            records = decoder.feed(chunk)
            if records:
                return response.headers, json.loads(records[0])
    raise AssertionError("stream ended without an event")


@pytest.mark.parametrize(
    ("headers", "body", "status", "text"),
    [
        ({}, SUBSCRIBE, 400, "Expecting 'Content-Type' to be present"),
        ({"Content-Type": "text/plain"}, SUBSCRIBE, 415, "Expecting 'Content-Type' of"),
        ({"Content-Type": "application/json; charset=utf-8"}, SUBSCRIBE, 415, ""),
        ({"Content-Type": "Application/JSON"}, SUBSCRIBE, 415, ""),
        (JSON, b"{not json", 400, "Failed to parse body into JSON"),
        (JSON, [1, 2], 400, "Failed to convert JSON into Call protobuf"),
        (
            JSON,
            {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "n"}}},
            400,
            "Missing required fields: subscribe.framework_info.user",
        ),
        (JSON, {"type": "SUBSCRIBE", "subscribe": {"framework_info": "x"}}, 400, "Not expecting"),
        (JSON, {"subscribe": SUBSCRIBE["subscribe"]}, 400, "Expecting 'type' to be present"),
        (JSON, {"type": "NOT_A_CALL"}, 400, "Expecting 'type' to be present"),
        (JSON, {"type": "SUBSCRIBE"}, 400, "Expecting 'subscribe' to be present"),
        (
            JSON,
            {**SUBSCRIBE, "framework_id": {"value": "x"}},
            400,
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        (JSON, {"type": "TEARDOWN"}, 400, "Expecting 'framework_id' to be present"),
        (
            JSON,
            {"type": "DECLINE", "framework_id": {"value": "f"}},
            400,
            "Expecting 'decline' to be present",
        ),
        (
            JSON,
            {
                "type": "ACKNOWLEDGE",
                "framework_id": {"value": "f"},
                "acknowledge": {
                    "agent_id": {"value": "a"},
                    "task_id": {"value": "t"},
                    "uuid": "AAAA",
                },
            },
            400,
            "Failed to validate scheduler::Call",
        ),
        (
            JSON,
            {"type": "TEARDOWN", "framework_id": {"value": "nope"}},
            400,
            "Framework cannot be found",
        ),
        (
            JSON,
            {"type": "MESSAGE", "framework_id": {"value": "f"}},
            400,
            "Failed to validate scheduler::Call: Expecting 'message' to be present",
        ),
        (
            JSON,
            {
                "type": "MESSAGE",
                "framework_id": {"value": "f"},
                "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}},
            },
            400,
            "Failed to convert JSON into Call protobuf: Missing required fields: message.data",
        ),
        (
            JSON,
            {
                "type": "MESSAGE",
                "framework_id": {"value": "f"},
                "message": {
                    "agent_id": {"value": "a"},
                    "executor_id": {"value": "e"},
                    "data": "not base64!",
                },
            },
            400,
            "Failed to base64 decode field 'message.data'",
        ),
        (
            {**JSON, "Mesos-Stream-Id": "x"},
            SUBSCRIBE,
            400,
            "should not include the 'Mesos-Stream-Id'",
        ),
        ({**JSON, "Accept": "application/xml"}, SUBSCRIBE, 406, "Expecting 'Accept' to allow"),
        ({**JSON, "Accept": "application/json;q=0"}, SUBSCRIBE, 406, ""),
    ],
)
async def test_request_level_errors(http, headers, body, status, text) -> None:
    response = await post(http, body, headers)
    assert response.status_code == status, response.text
    assert text in response.text
    if response.text:
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
    # A bad request never hurts the master.
    assert (await http.get("/health")).status_code == 200


async def test_other_methods_get_405(http) -> None:
    response = await http.get("/api/v1/scheduler")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_unknown_path_is_404_and_state_json_is_gone(http) -> None:
    assert (await http.get("/state.json")).status_code == 404
    assert (await http.post("/api/v1/nope", json={})).status_code == 404


async def test_stream_id_rules_and_disconnected_framework(http, master) -> None:
    info = {"user": "u", "name": "n", "failover_timeout": 60.0}
    headers, event = await subscribe_raw(
        http, {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    )
    # Leaving the block closed the stream: the framework is now disconnected.
    framework_id = event["subscribed"]["framework_id"]["value"]
    with trio.fail_after(3):
        while master.frameworks[framework_id].connected:
            await trio.sleep(0.01)
    call = {"type": "REVIVE", "framework_id": {"value": framework_id}}
    response = await post(http, call, {**JSON, "Mesos-Stream-Id": headers["mesos-stream-id"]})
    assert response.status_code == 403
    assert response.text == "Framework is not subscribed"

    decoder = RecordIODecoder()
    body = {**SUBSCRIBE, "framework_id": {"value": framework_id}}
    body["subscribe"] = {
        "framework_info": {
            **SUBSCRIBE["subscribe"]["framework_info"],
            "id": {"value": framework_id},
        }
    }
    async with http.stream("POST", "/api/v1/scheduler", json=body) as stream:
        stream_id = stream.headers["mesos-stream-id"]
        chunks = stream.aiter_bytes()  # keep a reference: a dropped iterator closes the stream
        async for chunk in chunks:
            if decoder.feed(chunk):
                break
        missing = await post(http, call)
        assert missing.status_code == 400
        assert "should include the 'Mesos-Stream-Id'" in missing.text
        wrong = await post(http, call, {**JSON, "Mesos-Stream-Id": "not-it"})
        assert wrong.status_code == 400
        assert "didn't match the stream ID" in wrong.text
        ok = await post(http, call, {**JSON, "Mesos-Stream-Id": stream_id})
        assert ok.status_code == 202
        assert ok.content == b""
        unknown = {"type": "UNKNOWN", "framework_id": {"value": framework_id}}
        assert (
            await post(http, unknown, {**JSON, "Mesos-Stream-Id": stream_id})
        ).status_code == 501
        # Unknown JSON keys are ignored, as Mesos does.
        extra = {**call, "bogus": 1}
        assert (await post(http, extra, {**JSON, "Mesos-Stream-Id": stream_id})).status_code == 202


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"roles": ["a"]}, "MULTI_ROLE"),
        ({"roles": ["a", "a"], "capabilities": [{"type": "MULTI_ROLE"}]}, "duplicate"),
        ({"role": "/x"}, "Invalid role"),
        ({"failover_timeout": -1}, "failover_timeout"),
    ],
)
async def test_framework_level_refusal_is_200_then_error(http, info, message) -> None:
    body = {
        "type": "SUBSCRIBE",
        "subscribe": {"framework_info": {"user": "u", "name": "n", **info}},
    }
    headers, event = await subscribe_raw(http, body)
    assert headers["content-type"] == "application/json"
    assert "mesos-stream-id" in headers
    assert event["type"] == "ERROR"
    assert message in event["error"]["message"]


async def test_operator_endpoints(http, master) -> None:
    health = await http.get("/health")
    assert health.status_code == 200 and health.content == b""
    version = (await http.get("/version")).json()
    assert version["version"].startswith("1.")
    state = (await http.get("/master/state")).json()
    for key in (
        "version", "id", "pid", "hostname", "activated_slaves", "leader", "leader_info",
        "flags", "slaves", "frameworks", "completed_frameworks", "orphan_tasks",
        "unregistered_frameworks", "recovered_slaves", "start_time", "elected_time",
    ):  # fmt: skip
        assert key in state, key
    assert state["id"] == master.id
    assert state["leader_info"]["port"] == master.port
    redirect = await http.get("/redirect")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"//127.0.0.1:{master.port}"
