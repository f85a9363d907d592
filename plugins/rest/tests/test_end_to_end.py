"""marathon-python against ``marathon --master local``: real agents, real tasks.

The whole product as a user meets it: the server process with the embedded Mesos
cluster (agent processes on 127.0.0.2 and .3), the scheduler, deployments, and the
REST API, driven only through the PyPI client.
"""

from __future__ import annotations

import collections
import collections.abc
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    setattr(collections, _name, getattr(collections.abc, _name))

from marathon import MarathonClient  # noqa: E402
from marathon.models import MarathonApp  # noqa: E402

from marathon_core.testing.processes import (  # noqa: E402
    local_cluster_args,
    running_marathon,
    wait_for,
)

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarathonClient]:
    agents = "cpus:2;mem:1024;disk:1000;ports:[31000-31100]"
    with running_marathon(
        *local_cluster_args(2, agent_resources=agents), state_dir=tmp_path_factory.mktemp("state")
    ) as server:
        yield MarathonClient(server.url)
        assert server.stop() == 0


def deployed(client: MarathonClient, app_id: str, running: int) -> Callable[[], bool]:
    def check() -> bool:
        app = client.get_app(app_id)
        return app.deployments == [] and app.tasks_running == running

    return check


def test_an_app_runs_scales_restarts_and_stops(client: MarathonClient) -> None:
    events: list[Any] = []
    listening = threading.Event()

    def listen() -> None:
        kinds = ["event_stream_attached", "status_update_event"]
        try:
            for event in client.event_stream(event_types=kinds):
                events.append(event)
                listening.set()
        except requests.RequestException:
            pass  # the server stopped at the end of the module

    threading.Thread(target=listen, daemon=True).start()
    assert listening.wait(10)

    client.create_app("e2e/sleep", MarathonApp(cmd="sleep 1000", cpus=0.1, mem=16, instances=3))
    wait_for(deployed(client, "/e2e/sleep", 3), what="3 running tasks")
    tasks = client.list_tasks("/e2e/sleep")
    assert len(tasks) == 3
    assert {t.host for t in tasks} <= {"127.0.0.2", "127.0.0.3"}
    assert all(t.ports and 31000 <= t.ports[0] <= 31100 for t in tasks)
    wait_for(
        lambda: any(getattr(e, "task_status", None) == "TASK_RUNNING" for e in events),
        what="a status_update_event",
    )

    result = client.kill_task("/e2e/sleep", tasks[0].id, scale=True)
    assert result["deploymentId"]
    wait_for(deployed(client, "/e2e/sleep", 2), what="2 tasks after kill+scale")
    left = {t.id for t in client.list_tasks("/e2e/sleep")}
    assert tasks[0].id not in left and client.get_app("/e2e/sleep").instances == 2

    killed = client.kill_tasks("/e2e/sleep")  # no scale: replaced
    assert {t.id for t in killed} == left
    wait_for(
        lambda: len({t.id for t in client.list_tasks("/e2e/sleep")} - left) == 2,
        what="2 replacement tasks",
    )

    before = {t.id for t in client.list_tasks("/e2e/sleep")}
    client.restart_app("/e2e/sleep")
    wait_for(deployed(client, "/e2e/sleep", 2), what="restart")
    assert not before & {t.id for t in client.list_tasks("/e2e/sleep")}

    client.delete_app("/e2e/sleep")
    wait_for(lambda: client.list_deployments() == [], what="stop deployment")
    assert client.list_tasks() == []


def test_the_queue_explains_why_an_app_waits(client: MarathonClient) -> None:
    client.create_app("e2e/huge", MarathonApp(cmd="sleep 1000", cpus=64, mem=16, instances=1))

    def waiting() -> Any:
        items = [q for q in client.list_queue() if q.app.id == "/e2e/huge"]
        summary = items[0].processed_offers_summary if items else None
        return summary if summary and summary["nearMisses"] else None

    summary = wait_for(waiting, what="a queue entry with offer statistics")
    assert any("cpus" in miss for miss in summary["nearMisses"])
    reasons = {r["reason"] for r in summary["rejectSummaryLastOffers"] if r["declined"]}
    assert "InsufficientCpus" in reasons
    client.delete_app("/e2e/huge", force=True)
    wait_for(lambda: client.list_queue() == [], what="an empty queue")


def test_a_failing_task_is_the_apps_last_task_failure(client: MarathonClient) -> None:
    client.create_app("e2e/crash", MarathonApp(cmd="exit 3", cpus=0.1, mem=16, instances=1))

    def failure() -> Any:
        return client.get_app("/e2e/crash").last_task_failure

    last = wait_for(failure, what="a lastTaskFailure")
    assert last.app_id == "/e2e/crash"
    assert last.state == "TASK_FAILED"
    assert "3" in last.message  # the command's exit status
    assert last.host in {"127.0.0.2", "127.0.0.3"} and last.task_id.startswith("e2e_crash.")
    client.delete_app("/e2e/crash", force=True)
