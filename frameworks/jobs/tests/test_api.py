"""Chronos's REST API on one leading instance (memory storage, no Mesos)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import trio

from marathon_core.framework import MemoryStorage, SoloElection
from marathon_core.plugins import get_plugin_host
from marathon_jobs.api import Node, create_app
from marathon_jobs.book import Book
from marathon_jobs.tasks import Placement

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
SCHEDULED = {"name": "nightly", "command": "echo hi", "schedule": "R/2026-03-02T00:00:00Z/P1D",
             "epsilon": "PT30S", "owner": "ops@example.com", "cpus": "0.5", "mem": 64}  # fmt: skip


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    host = get_plugin_host()
    node = Node(
        placement=Placement(host.constraint_operators(), host.container_runtimes()),
        election=SoloElection("localhost:4400"),
    )
    book = Book(MemoryStorage(), list)

    async def lead() -> None:
        node.book = book
        await trio.sleep_forever()

    transport = httpx.ASGITransport(app=create_app(node, clock=lambda: NOW))
    async with trio.open_nursery() as nursery:
        assert node.election is not None
        await nursery.start(node.election.run, lead)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobs") as client:
            yield client
        nursery.cancel_scope.cancel()


async def test_a_scheduled_job_is_listed_with_its_counts(api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/scheduler/iso8601", json=SCHEDULED)
    assert answer.status_code == 204, answer.text
    (job,) = (await api.get("/v1/scheduler/jobs")).json()
    assert job["name"] == "nightly" and job["cpus"] == 0.5 and job["mem"] == 64
    assert job["schedule"] == "R/2026-03-02T00:00:00.000Z/P1D"
    assert (job["successCount"], job["errorCount"], job["missedCount"]) == (0, 0, 0)
    assert (job["lastSuccess"], job["lastError"], job["disabled"]) == ("", "", False)
    assert job["retries"] == 2 and job["shell"] is True and job["epsilon"] == "PT30S"


async def test_dependent_jobs_need_existing_parents(api: httpx.AsyncClient) -> None:
    orphan = {"name": "report", "command": "true", "parents": ["nightly"]}
    answer = await api.post("/v1/scheduler/dependency", json=orphan)
    assert answer.status_code == 400
    assert answer.json() == {"message": "Error, parent does not exist", "status": "Bad Request"}
    await api.post("/v1/scheduler/iso8601", json=SCHEDULED)
    assert (await api.post("/v1/scheduler/dependency", json=orphan)).status_code == 204
    csv = (await api.get("/v1/scheduler/graph/csv")).text
    assert csv == "node,nightly,fresh,idle\nnode,report,fresh,idle\nlink,nightly,report\n"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "bad/name"}, "the job's name is invalid. Allowed names: '([\\w\\s\\.#_-]+)'"),
        ({"schedule": "R/tomorrow/PT1M"}, "Cannot parse schedule 'R/tomorrow/PT1M'"),
        ({"schedule": "R/2026-03-02T00:00:00Z"}, "Cannot parse schedule"),
        ({"schedule": "R/2024-01-01T00:00:00Z/PT1M"}, "is more than 1 year in the past!"),
        ({"scheduleTimeZone": "Mars/Olympus"}, "unknown time zone"),
        ({"cpus": "lots"}, "cpus must be a number"),
        ({"retries": -1}, "retries must be a whole number"),
        ({"constraints": [["hostname", "NEAR", "x"]]}, "constraints"),
        ({"container": {"type": "DOCKER"}}, "container"),
    ],
)
async def test_bad_jobs_get_400_with_a_message(
    api: httpx.AsyncClient, change: dict[str, object], message: str
) -> None:
    answer = await api.post("/v1/scheduler/iso8601", json={**SCHEDULED, **change})
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]
    assert answer.json()["status"] == "Bad Request"


async def test_invalid_json_is_a_400(api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/scheduler/iso8601", content=b"{nope")
    assert answer.status_code == 400 and "Invalid JSON" in answer.json()["message"]


async def test_constraints_and_containers_use_the_plugins(api: httpx.AsyncClient) -> None:
    job = {**SCHEDULED, "constraints": [["hostname", "UNIQUE"], ["rack", "LIKE", "r[12]"]],
           "container": {"type": "MESOS"}}  # fmt: skip
    assert (await api.post("/v1/scheduler/iso8601", json=job)).status_code == 204


async def test_search_run_now_kill_and_delete(api: httpx.AsyncClient) -> None:
    await api.post("/v1/scheduler/iso8601", json=SCHEDULED)
    await api.post("/v1/scheduler/iso8601", json={**SCHEDULED, "name": "hourly"})
    found = (await api.get("/v1/scheduler/jobs/search", params={"name": "NIGHT"})).json()
    assert [j["name"] for j in found] == ["nightly"]
    assert (await api.put("/v1/scheduler/job/nightly")).status_code == 204
    (job,) = (await api.get("/v1/scheduler/jobs/search", params={"name": "nightly"})).json()
    assert job["state"] == "queued"
    assert (await api.delete("/v1/scheduler/task/kill/nightly")).status_code == 204
    assert (await api.delete("/v1/scheduler/job/nightly")).status_code == 204
    assert [j["name"] for j in (await api.get("/v1/scheduler/jobs")).json()] == ["hourly"]
    for method, path in [("PUT", "job/nightly"), ("DELETE", "job/nightly"),
                         ("DELETE", "task/kill/nightly")]:  # fmt: skip
        assert (await api.request(method, f"/v1/scheduler/{path}")).status_code == 404


async def test_leader(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/scheduler/leader")).json() == {"leader": "localhost:4400"}


async def test_replacing_a_job_keeps_its_counts_and_slot(api: httpx.AsyncClient) -> None:
    await api.post("/v1/scheduler/iso8601", json=SCHEDULED)
    await api.post("/v1/scheduler/iso8601", json={**SCHEDULED, "command": "echo bye"})
    (job,) = (await api.get("/v1/scheduler/jobs")).json()
    assert job["command"] == "echo bye" and job["schedule"].startswith("R/2026-03-02T00:00")


async def test_deleting_a_parent_rewires_its_dependents_as_chronos_does(
    api: httpx.AsyncClient,
) -> None:
    """A deleted dependent job's parents take its place; a deleted scheduled job's only
    child takes over its schedule; a child with other parents loses just the edge."""
    await api.post("/v1/scheduler/iso8601", json=SCHEDULED)
    other = {**SCHEDULED, "name": "hourly", "schedule": "R/2026-03-02T00:00:00Z/PT1H"}
    await api.post("/v1/scheduler/iso8601", json=other)
    for name, parents in (("load", ["nightly"]), ("report", ["load"]),
                          ("audit", ["nightly", "hourly"])):  # fmt: skip
        job = {"name": name, "command": "true", "parents": parents}
        assert (await api.post("/v1/scheduler/dependency", json=job)).status_code == 204

    async def jobs() -> dict[str, dict[str, object]]:
        return {j["name"]: j for j in (await api.get("/v1/scheduler/jobs")).json()}

    assert (await api.delete("/v1/scheduler/job/load")).status_code == 204
    assert (await jobs())["report"]["parents"] == ["nightly"]
    assert (await api.delete("/v1/scheduler/job/nightly")).status_code == 204
    after = await jobs()
    assert set(after) == {"hourly", "report", "audit"}
    assert after["audit"]["parents"] == ["hourly"]
    report = after["report"]
    assert "parents" not in report
    assert report["schedule"] == "R/2026-03-02T00:00:00.000Z/P1D"
    csv = (await api.get("/v1/scheduler/graph/csv")).text
    assert csv.splitlines()[-1] == "link,hourly,audit" and csv.count("link,") == 1
