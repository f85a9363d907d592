"""Issue 14's deployment acceptance on ``marathon --master local``: real agents, real tasks.

- a rolling upgrade of 10 HTTP servers (minimumHealthCapacity 0.5, maximumOverCapacity
  0.2, an HTTP health check and an HTTP readiness check), watched by an observer that
  polls the API without pause: never fewer than 5 healthy-and-ready instances, never
  more than 12, and 10 of the new version at the end;
- an app no offer fits, one that crash-loops (with a health check, or with tasks that
  fail before they run) and one whose readiness never passes each show their reason
  in ``GET /v2/deployments/{id}`` within one offer cycle;
- a group with dependencies starts in dependency order and stops in reverse order, as
  the event stream shows.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    setattr(collections, _name, getattr(collections.abc, _name))

from marathon import MarathonClient  # noqa: E402

from marathon_core.testing.processes import (  # noqa: E402
    RunningMarathon,
    local_cluster_args,
    running_marathon,
    searchable_state_dir,
    wait_for,
)

pytestmark = pytest.mark.processes

SERVE = "exec python3 -m http.server --bind $HOST $PORT0"


@pytest.fixture(scope="module")
def server() -> Iterator[RunningMarathon]:
    # Tasks run as nobody: http.server serves its cwd, which nobody must reach by path.
    agents = "cpus:4;mem:2048;disk:1000;ports:[31000-31200]"
    with (
        searchable_state_dir() as state_dir,
        running_marathon(
            *local_cluster_args(2, agent_resources=agents), state_dir=state_dir
        ) as running,
    ):
        yield running
        assert running.stop() == 0


def get(server: RunningMarathon, path: str) -> Any:
    response = httpx.get(f"{server.url}{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def rolling_app(cmd: str) -> dict[str, Any]:
    return {
        "id": "/acc/roll",
        "cmd": cmd,
        "cpus": 0.05,
        "mem": 24,
        "instances": 10,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
        "healthChecks": [
            {
                "protocol": "HTTP",
                "path": "/",
                "portIndex": 0,
                "gracePeriodSeconds": 60,
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                "maxConsecutiveFailures": 5,
            }
        ],
        "readinessChecks": [
            {
                "name": "ready",
                "protocol": "HTTP",
                "path": "/",
                "portName": "http",
                "intervalSeconds": 2,
                "timeoutSeconds": 1,
                "httpStatusCodesForReady": [200],
                "preserveLastResponse": True,
            }
        ],
    }


class Observer:
    """Polls ``/v2/apps/acc/roll?embed=app.readiness`` without pause and keeps the
    extremes: live tasks, and tasks that are Running, healthy and ready (old-version
    tasks count as ready; new ones once their readiness check passed, or once no
    deployment runs any more)."""

    def __init__(self, server: RunningMarathon, old_version: str) -> None:
        self.server = server
        self.old_version = old_version
        self.fewest_ready = 10**6
        self.most_live = 0
        self.polls = 0
        self.saw_readiness_results = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Observer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10) as client:
            while not self._stop.is_set():
                app = client.get("/v2/apps/acc/roll?embed=app.readiness").json()["app"]
                self.observe(app)

    def observe(self, app: dict[str, Any]) -> None:
        self.polls += 1
        results = app.get("readinessCheckResults", [])
        self.saw_readiness_results |= bool(results)
        ready_ids = {r["taskId"] for r in results if r["ready"]}
        deploying = bool(app["deployments"])
        ready = 0
        for task in app["tasks"]:
            healthy = task["state"] == "TASK_RUNNING" and all(
                h["alive"] for h in task.get("healthCheckResults", [])
            )
            checked = (
                task["version"] == self.old_version or not deploying or task["id"] in ready_ids
            )
            ready += healthy and bool(task.get("healthCheckResults")) and checked
        self.most_live = max(self.most_live, len(app["tasks"]))
        self.fewest_ready = min(self.fewest_ready, ready)


def test_a_rolling_upgrade_keeps_within_its_strategy(server: RunningMarathon) -> None:
    created = httpx.post(f"{server.url}/v2/apps", json=rolling_app(SERVE), timeout=10)
    assert created.status_code == 201, created.text

    def settled() -> dict[str, Any] | None:
        app = get(server, "/v2/apps/acc/roll")["app"]
        done = not app["deployments"] and app["tasksHealthy"] == 10
        return app if done else None

    v1 = wait_for(settled, timeout=120, what="10 healthy instances of v1")
    upgraded = rolling_app(f"sleep 1 && {SERVE}")
    with Observer(server, v1["version"]) as observer:
        put = httpx.put(f"{server.url}/v2/apps/acc/roll", json=upgraded, timeout=10)
        assert put.status_code == 200, put.text
        v2 = wait_for(settled, timeout=240, what="10 healthy instances of v2")
    versions = {t["version"] for t in v2["tasks"]}
    assert versions == {v2["version"]} and v2["version"] != v1["version"]
    assert len(v2["tasks"]) == 10
    print(  # the figures, for -s runs
        f"observer: {observer.polls} polls, fewest healthy-and-ready {observer.fewest_ready}, "
        f"most live {observer.most_live}"
    )
    assert observer.polls > 20
    assert observer.saw_readiness_results
    assert observer.fewest_ready >= 5, observer.fewest_ready
    assert observer.most_live <= 12, observer.most_live
    httpx.delete(f"{server.url}/v2/apps/acc/roll?force=true", timeout=10)
    # The next tests share this server and expect their own deployment alone.
    wait_for(lambda: get(server, "/v2/deployments") == [], timeout=60, what="no deployment")


def deployment_reason(server: RunningMarathon, deployment_id: str, app_id: str) -> Any:
    response = httpx.get(f"{server.url}/v2/deployments/{deployment_id}", timeout=10)
    if response.status_code != 200:
        return None
    return response.json()["status"][app_id].get("reason")


@pytest.mark.parametrize(
    ("app", "kind", "detail"),
    [
        ({"id": "/acc/huge", "cmd": "sleep 100", "cpus": 64, "mem": 16}, "noMatchingOffer", "cpus"),
        (
            # Without a health check the deployment would end at its first Running
            # (Marathon's rule); with one the crashing task never counts.
            {
                "id": "/acc/crash",
                "cmd": "exit 7",
                "cpus": 0.05,
                "mem": 16,
                "portDefinitions": [{"port": 0}],
                "healthChecks": [{"protocol": "TCP", "intervalSeconds": 1, "timeoutSeconds": 1}],
            },
            "backoff",
            "7",
        ),
        (
            # No health check: its tasks fail before they ever run (nothing to fetch
            # at that address), so no Running ends the deployment.
            {
                "id": "/acc/unfetchable",
                "cmd": "sleep 100",
                "cpus": 0.05,
                "mem": 16,
                "fetch": [{"uri": "http://127.0.0.1:9/missing.tar.gz"}],
            },
            "backoff",
            "Failed to fetch",
        ),
        (
            {
                "id": "/acc/unready",
                "cmd": SERVE,
                "cpus": 0.05,
                "mem": 24,
                "portDefinitions": [{"port": 0, "name": "http"}],
                "readinessChecks": [
                    {"portName": "http", "path": "/nope", "intervalSeconds": 2, "timeoutSeconds": 1}
                ],
            },
            "readinessChecks",
            "404",
        ),
    ],
)
def test_a_stuck_deployment_says_why(
    server: RunningMarathon, app: dict[str, Any], kind: str, detail: str
) -> None:
    created = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert created.status_code == 201, created.text
    deployment_id = created.headers["Marathon-Deployment-Id"]
    started = time.monotonic()

    def explained() -> Any:
        reason = deployment_reason(server, deployment_id, app["id"])
        found = reason is not None and reason["kind"] == kind and detail in reason["message"]
        return reason if found else None

    # One offer cycle: offers come every --min_revive_offers_interval (200 ms) and a
    # failed task backs off 1 s; a readiness check asks again every interval (2 s; the
    # first may come before the server listens).
    wait_for(explained, timeout=30, what=f"reason {kind} with {detail}")
    took = time.monotonic() - started
    assert took < 15, took
    # marathon-python still reads the deployments and the apps with what we add.
    client = MarathonClient(server.url)
    (listed,) = client.list_deployments()
    assert listed.id == deployment_id
    (shown,) = client.list_apps(
        app_id=app["id"], embed_readiness=True, embed_last_task_failure=True
    )
    if kind == "backoff":
        assert (
            shown.last_task_failure is not None and shown.last_task_failure.state == "TASK_FAILED"
        )
    cancel = httpx.delete(f"{server.url}/v2/apps{app['id']}?force=true", timeout=10)
    assert cancel.status_code == 200, cancel.text
    wait_for(lambda: get(server, "/v2/deployments") == [], timeout=60, what="no deployment")


class EventLog:
    """``/v2/events`` read by a thread: (event type, payload) in arrival order."""

    def __init__(self, server: RunningMarathon) -> None:
        self.events: list[dict[str, Any]] = []
        self.attached = threading.Event()
        self._server = server
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EventLog:
        self._thread.start()
        assert self.attached.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def _run(self) -> None:
        headers = {"Accept": "text/event-stream"}
        try:
            with self._client.stream("GET", f"{self._server.url}/v2/events", headers=headers) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        event = json.loads(line.removeprefix("data:").strip())
                        if event.get("eventType") == "event_stream_attached":
                            self.attached.set()
                        self.events.append(event)
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by __exit__

    def first_update(self, app_id: str, state: str | None = None) -> int:
        """The position of the first status update of ``app_id`` (in ``state``)."""
        for position, event in enumerate(list(self.events)):
            if (
                event.get("eventType") == "status_update_event"
                and event.get("appId") == app_id
                and state in (None, event.get("taskStatus"))
            ):
                return position
        raise AssertionError(f"no status update of {app_id} ({state})")

    def first(self, state: str, app_ids: list[str]) -> list[str]:
        """``app_ids`` in the order their first task reached ``state``."""
        order: list[str] = []
        for event in list(self.events):
            app_id = event.get("appId")
            if (
                event.get("eventType") == "status_update_event"
                and event.get("taskStatus") == state
                and app_id in app_ids
                and app_id not in order
            ):
                order.append(app_id)
        return order


def test_a_group_starts_in_dependency_order_and_stops_in_reverse(
    server: RunningMarathon,
) -> None:
    def app(name: str, *deps: str) -> dict[str, Any]:
        return {
            "id": name,
            "cmd": "sleep 1000",
            "cpus": 0.05,
            "mem": 16,
            "dependencies": [f"/acc/g/{d}" for d in deps],
        }

    group = {"id": "/acc/g", "apps": [app("web", "api"), app("api", "db"), app("db")]}
    ids = ["/acc/g/db", "/acc/g/api", "/acc/g/web"]
    with EventLog(server) as log:
        created = httpx.post(f"{server.url}/v2/groups", json=group, timeout=10)
        assert created.status_code == 201, created.text
        wait_for(lambda: len(log.first("TASK_RUNNING", ids)) == 3, timeout=60, what="all running")
        assert log.first("TASK_RUNNING", ids) == ids
        # Not even launched before what it depends on ran.
        assert log.first_update("/acc/g/api") > log.first_update("/acc/g/db", "TASK_RUNNING")
        assert log.first_update("/acc/g/web") > log.first_update("/acc/g/api", "TASK_RUNNING")
        removed = httpx.delete(f"{server.url}/v2/groups/acc/g", timeout=10)
        assert removed.status_code == 200, removed.text
        wait_for(lambda: len(log.first("TASK_KILLED", ids)) == 3, timeout=60, what="all killed")
        assert log.first("TASK_KILLED", ids) == list(reversed(ids))
