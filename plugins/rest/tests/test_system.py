"""System endpoints and Marathon's error shapes over real HTTP on loopback."""

from __future__ import annotations

import socket

import httpx
import trio

import marathon_core
import marathon_rest.plugin
from marathon_core.testing.context import CoreContext, memory_context
from marathon_rest.server import serve_api

# What marathon-python 0.13 accepts in /v2/info: any other key makes it raise.
INFO_KEYS = {
    "eventSubscriber",
    "frameworkId",
    "http_config",
    "leader",
    "marathon_config",
    "name",
    "version",
    "elected",
    "zookeeper_config",
    "buildref",
}
MARATHON_CONFIG_KEYS = {
    "checkpoint",
    "executor",
    "failover_timeout",
    "framework_name",
    "ha",
    "hostname",
    "leader_proxy_connection_timeout_ms",
    "leader_proxy_read_timeout_ms",
    "local_port_min",
    "local_port_max",
    "master",
    "mesos_leader_ui_url",
    "mesos_role",
    "mesos_user",
    "webui_url",
    "reconciliation_initial_delay",
    "reconciliation_interval",
    "task_launch_timeout",
    "task_reservation_timeout",
    "marathon_store_timeout",
}


async def test_ping_answers_pong_in_the_asked_form(client: httpx.AsyncClient) -> None:
    text = await client.get("/ping")
    assert (text.status_code, text.text) == (200, "pong")
    assert text.headers["content-type"].startswith("text/plain")
    as_json = await client.get("/ping", headers={"Accept": "application/json"})
    assert as_json.json() == "pong"
    nothing = await client.get("/ping", headers={"Accept": "image/png"})
    assert nothing.status_code == 204


async def test_info_has_the_keys_clients_parse(client: httpx.AsyncClient, api_url: str) -> None:
    info = (await client.get("/v2/info")).json()
    assert set(info) <= INFO_KEYS
    assert set(info["marathon_config"]) <= MARATHON_CONFIG_KEYS
    assert info["name"] == "marathon"
    assert (info["version"], info["buildref"]) == ("1.11.0", marathon_core.__version__)
    assert info["elected"] is True
    port = int(api_url.rsplit(":", 1)[1])
    assert info["http_config"]["http_port"] == port
    assert info["leader"] == f"{socket.gethostname()}:{port}"
    assert info["marathon_config"]["master"] == "local"
    # The master the context knows (the embedded one for --master local).
    assert info["marathon_config"]["mesos_leader_ui_url"] == "http://127.0.0.1:5050"


async def test_leader_and_its_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/leader")
    leader = response.json()["leader"]
    assert response.headers["x-marathon-leader"] == f"http://{leader}"
    assert response.headers["x-frame-options"] == "DENY"


async def test_double_slashes_are_collapsed(client: httpx.AsyncClient, api_url: str) -> None:
    response = await client.get(f"{api_url}//v2//leader")
    assert response.status_code == 200
    assert "leader" in response.json()


async def test_unknown_routes_and_methods_answer_in_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v2/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"message": "URI not found"}
    wrong_method = await client.post("/v2/leader")
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()) == {"message"}


async def test_metrics_report_live_gauges(client: httpx.AsyncClient) -> None:
    await client.post("/v2/apps", json={"id": "/m/a", "cmd": "sleep 1"})
    snapshot = (await client.get("/metrics")).json()
    gauges = snapshot["gauges"]
    assert gauges["marathon.apps.active.gauge"] == {"value": 1}
    assert gauges["marathon.deployments.active.gauge"] == {"value": 1}
    assert gauges["marathon.groups.active.gauge"] == {"value": 2}  # root and /m
    text = (await client.get("/metrics/prometheus")).text
    assert "marathon_apps_active_gauge 1\n" in text
    assert "# TYPE marathon_deployments_active_gauge gauge" in text


async def test_delete_leader_abdicates_and_a_new_term_starts(
    client: httpx.AsyncClient, api_context: CoreContext
) -> None:
    election = api_context.election
    assert election.is_leader
    terms = election.statistics().terms
    response = await client.delete("/v2/leader")
    assert response.json() == {"message": "Leadership abdicated"}
    with trio.fail_after(5):  # the solo participant leads again after stepping down
        while election.statistics().terms < terms + 1:
            await trio.sleep(0.05)


async def test_a_process_that_does_not_lead_and_knows_no_leader_answers_503() -> None:
    args = ["--http_port", "0", "--http_address", "127.0.0.1"]
    ctx = await memory_context(args, plugins={"rest": marathon_rest.plugin})
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_api, ctx)
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.delete("/v2/leader")
        assert response.status_code == 503  # nobody to forward the abdication to
        nursery.cancel_scope.cancel()


async def test_info_shows_the_framework_id_once_registered(
    client: httpx.AsyncClient, api_context: CoreContext
) -> None:
    assert (await client.get("/v2/info")).json()["frameworkId"] is None
    await api_context.state.framework_id.set("fw-0001")
    assert (await client.get("/v2/info")).json()["frameworkId"] == "fw-0001"
