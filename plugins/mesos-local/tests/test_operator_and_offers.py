"""Offer timeout, refused offer operations, and the operator API (``POST /api/v1``)."""

from __future__ import annotations

import httpx
import pytest

from marathon_core.testing.mesos_protos import parse_strict
from marathon_mesos_local.testing import task_info


@pytest.mark.cluster(offer_timeout=0.3)
async def test_offers_are_rescinded_after_offer_timeout(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    rescind = await client.wait_for(lambda e: e["type"] == "RESCIND", timeout=3)
    assert rescind["rescind"]["offer_id"] == offer["id"]
    # The resources come back in a new offer (no filter); the old offer is dead.
    again = (await client.wait_offers(since=client.events.index(rescind)))[0]
    assert again["id"] != offer["id"]
    mark = len(client.events)
    await client.launch([offer], [task_info(offer, "late.1", "sleep 1")])
    lost = await client.wait_update("late.1", "TASK_LOST", since=mark)
    assert lost["reason"] == "REASON_INVALID_OFFERS"
    state = cluster.master.state()
    assert state["flags"]["offer_timeout"] == "0.3secs"


async def test_unsupported_operations_are_refused_cleanly(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    offer = (await client.wait_offers())[0]
    cpus = [r for r in offer["resources"] if r["name"] == "cpus"]
    launch = {"task_infos": [task_info(offer, "ok.1", "sleep 5")]}
    response = await client.call(
        {
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [
                    {"type": "RESERVE", "id": {"value": "op-1"}, "reserve": {"resources": cpus}},
                    {"type": "CREATE", "create": {"volumes": []}},
                    {"type": "LAUNCH", "launch": launch},
                ],
                "filters": {"refuse_seconds": 0},
            },
        }
    )
    assert response.status_code == 202
    update = await client.wait_for(lambda e: e["type"] == "UPDATE_OPERATION_STATUS")
    status = update["update_operation_status"]["status"]
    assert status["operation_id"] == {"value": "op-1"}
    assert status["state"] == "OPERATION_ERROR"
    assert "uuid" not in status and "not supported" in status["message"]
    await client.wait_update("ok.1", "TASK_RUNNING")  # the rest of the call still applies
    assert not [
        e for e in client.events if e["type"] == "UPDATE_OPERATION_STATUS" and
        e["update_operation_status"]["status"].get("operation_id") is None
    ]  # fmt: skip
    async with httpx.AsyncClient() as http:
        assert (await http.get(cluster.url + "/health")).status_code == 200


async def _operator(url: str, call: dict, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            url + "/api/v1",
            json=call,
            headers={"Content-Type": "application/json", **headers},
        )


async def test_operator_api_answers_in_the_real_shapes(cluster, schedulers, nursery, mesos_pb):
    client = schedulers(cluster.url)
    await client.subscribe(nursery, name="op", capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    offer = (await client.wait_offers())[0]
    await client.launch(
        [offer],
        [task_info(offer, "op.1", "sleep 30", ports=1), task_info(offer, "op.2", "true")],
        filters={"refuse_seconds": 0},
    )
    await client.wait_update("op.1", "TASK_RUNNING")
    await client.wait_update("op.2", "TASK_FINISHED")
    await client.wait_offers(since=len(client.events) - 1)
    answers = {}
    for kind in ("GET_HEALTH", "GET_VERSION", "GET_FLAGS", "GET_MASTER", "GET_STATE",
                 "GET_AGENTS", "GET_FRAMEWORKS", "GET_TASKS", "GET_EXECUTORS"):  # fmt: skip
        response = await _operator(cluster.url, {"type": kind})
        assert response.status_code == 200, (kind, response.text)
        assert response.headers["content-type"] == "application/json"
        answers[kind] = response.json()
        assert answers[kind]["type"] == kind
        if mesos_pb is not None:
            parse_strict(mesos_pb, answers[kind], mesos_pb.master.Response)
    assert answers["GET_HEALTH"]["get_health"] == {"healthy": True}
    agents = answers["GET_AGENTS"]["get_agents"]["agents"]
    assert [a["agent_info"]["hostname"] for a in agents] == ["127.0.0.2"]
    tasks = answers["GET_TASKS"]["get_tasks"]
    assert {t["task_id"]["value"]: t["state"] for t in tasks["tasks"]} == {"op.1": "TASK_RUNNING"}
    assert [t["task_id"]["value"] for t in tasks["completed_tasks"]] == ["op.2"]
    frameworks = answers["GET_FRAMEWORKS"]["get_frameworks"]["frameworks"]
    assert frameworks[0]["framework_info"]["name"] == "op" and frameworks[0]["connected"]
    assert frameworks[0]["offers"], "the outstanding offer is listed"
    state = answers["GET_STATE"]["get_state"]
    assert state["get_tasks"] == tasks
    assert set(state) == {"get_tasks", "get_executors", "get_frameworks", "get_agents"}

    # Errors in Mesos's manner; the master keeps serving.
    async with httpx.AsyncClient() as http:
        assert (await http.get(cluster.url + "/api/v1")).status_code == 405
        no_type = await http.post(cluster.url + "/api/v1", content=b"{}",
                                  headers={"Content-Type": "application/json"})  # fmt: skip
        assert no_type.status_code == 400
        bad_json = await http.post(cluster.url + "/api/v1", content=b"{",
                                   headers={"Content-Type": "application/json"})  # fmt: skip
        assert bad_json.status_code == 400
        wrong_type = await http.post(cluster.url + "/api/v1", content=b"{}",
                                     headers={"Content-Type": "text/plain"})  # fmt: skip
        assert wrong_type.status_code == 415
    assert (
        await _operator(cluster.url, {"type": "GET_STATE"}, Accept="text/html")
    ).status_code == 406
    assert (await _operator(cluster.url, {"type": "NOPE"})).status_code == 400
    unsupported = await _operator(cluster.url, {"type": "GET_QUOTA"})
    assert unsupported.status_code == 501 and "not supported" in unsupported.text

    # TEARDOWN through the operator API removes the framework and kills its tasks.
    teardown = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": client.framework_id}}}
    assert (await _operator(cluster.url, teardown)).status_code == 200
    assert client.framework_id not in cluster.master.frameworks
    assert (await _operator(cluster.url, teardown)).status_code == 400
