"""What marathon-ctl does against a server without this one's additions (a Marathon
1.x): no event stream, no deployment status. A small stdlib HTTP server in a thread
plays such a server over real loopback HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from marathon_ctl import watch

from .conftest import Ctl  # type: ignore[import-not-found]

Answer = tuple[int, Any]
Route = Callable[[], Answer]

V1, V2 = "2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"
NOT_FOUND: Answer = (404, {"message": "HTTP 404 Not Found"})


class FakeMarathon(ThreadingHTTPServer):
    """Answers ``(method, path)`` from ``routes`` (404 otherwise); counts the calls."""

    def __init__(self, routes: dict[tuple[str, str], Route]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.calls: dict[tuple[str, str], int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeMarathon

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = (self.command, urlsplit(self.path).path)
        self.server.calls[key] = self.server.calls.get(key, 0) + 1
        route = self.server.routes.get(key)
        status, body = route() if route is not None else NOT_FOUND
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[dict[tuple[str, str], Route]], FakeMarathon]]:
    servers: list[FakeMarathon] = []

    def start(routes: dict[tuple[str, str], Route]) -> FakeMarathon:
        server = FakeMarathon(routes)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _task(uuid: str, state: str, version: str) -> dict[str, Any]:
    return {
        "id": f"web.instance-{uuid}._app.1",
        "appId": "/web",
        "host": "agent-1",
        "state": state,
        "version": version,
    }


DEPLOYMENT = {
    "id": "d1",
    "version": V2,
    "affectedApps": ["/web"],
    "currentStep": 1,
    "totalSteps": 1,
    "currentActions": [{"action": "RestartApplication", "app": "/web"}],
    "steps": [{"actions": [{"action": "RestartApplication", "app": "/web"}]}],
}


@pytest.mark.parametrize("events_status", [404, 503])
def test_deploy_watch_polls_a_server_without_an_event_stream(
    ctl: Ctl,
    serve: Callable[[dict[tuple[str, str], Route]], FakeMarathon],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    events_status: int,
) -> None:
    """A rolling restart seen only through polls: the new task stages and runs, the old
    one goes, the deployment leaves the list: success (exit 0), not exit 1."""
    monkeypatch.setattr(watch, "FALLBACK_POLL_SECONDS", 0.05)
    polls = {"n": 0}

    def deployments() -> Answer:
        polls["n"] += 1
        return 200, [DEPLOYMENT] if polls["n"] < 6 else []

    def app() -> Answer:
        old, new = _task("old1aaaa", "TASK_RUNNING", V1), _task("new1bbbb", "TASK_STAGING", V2)
        n = polls["n"]
        tasks = (
            [old] if n <= 2 else [old, new] if n == 3 else [old, {**new, "state": "TASK_RUNNING"}]
        )
        tasks = tasks if n <= 4 else [{**new, "state": "TASK_RUNNING"}]
        body = {"id": "/web", "instances": 1, "version": V2, "tasks": tasks}
        return 200, {"app": {**body, "versionInfo": {"lastConfigChangeAt": V2}}}

    server = serve(
        {
            ("GET", "/v2/events"): lambda: (events_status, {"message": "no event stream"}),
            ("PUT", "/v2/apps/web"): lambda: (200, {"deploymentId": "d1", "version": V2}),
            ("GET", "/v2/deployments"): deployments,
            ("GET", "/v2/apps/web"): app,
            ("GET", "/v2/queue"): lambda: (200, {"queue": []}),
        }
    )
    path = tmp_path / "web.json"
    path.write_text(json.dumps({"id": "/web", "cmd": "sleep 1000", "instances": 1}))
    result = ctl("--url", server.url, "deploy", str(path), "--watch", "--timeout", "20")
    assert result.exit_code == 0, result.output
    lines = [line.split(" ", 1)[1] for line in result.stdout.splitlines()[1:-2]]
    assert lines == [
        f"no event stream (GET /v2/events: {events_status}): polling every 0.05s",
        "step 1/1 RestartApplication /web",
        "/web.new1bbbb Staging on agent-1 (/web 0/1 running · 1 old left)",
        "/web.new1bbbb Running on agent-1 (/web 1/1 running · 1 old left)",
        "old /web.old1aaaa Gone on agent-1 (/web 1/1 running)",
    ]
    assert result.stdout.splitlines()[-1].startswith("✓ deployment d1 succeeded")


def _stuck_app() -> Answer:
    tasks = [_task("run1aaaa", "TASK_RUNNING", V2)]
    body = {"id": "/web", "instances": 2, "version": V2, "tasks": tasks, "tasksRunning": 1}
    return 200, {"app": {**body, "deployments": [{"id": "d1"}], "tasksStaged": 0}}


QUEUE = {
    "queue": [
        {
            "app": {"id": "/web"},
            "count": 1,
            "delay": {"timeLeftSeconds": 0, "overdue": True},
            "processedOffersSummary": {"processedOffersCount": 4, "unusedOffersCount": 4},
        }
    ]
}


def test_why_reads_the_deployment_status_where_the_server_has_it(
    ctl: Ctl, serve: Callable[[dict[tuple[str, str], Route]], FakeMarathon]
) -> None:
    status = {
        "/web": {
            "action": "ScaleApplication",
            "step": 1,
            "state": "waiting",
            "progress": {"current": 1, "target": 2, "oldInstances": 0, "newInstances": 2},
            "reason": {"kind": "waitingForOffers", "message": "1 instance(s) wait for offers"},
        }
    }
    server = serve(
        {
            ("GET", "/v2/apps/web"): _stuck_app,
            ("GET", "/v2/deployments/d1"): lambda: (200, {**DEPLOYMENT, "status": status}),
            ("GET", "/v2/queue"): lambda: (200, QUEUE),
        }
    )
    result = ctl("--url", server.url, "why", "/web")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "/web: 1/2 running, 0 staging",
        "deployment d1 step 1/1 ScaleApplication: waiting, 1/2 new ready",
        "1 instance(s) wait for offers",
    ]
    assert ("GET", "/v2/queue") not in server.calls


@pytest.mark.parametrize("missing", [404, 405])
def test_why_falls_back_to_the_queue_where_the_route_is_missing(
    ctl: Ctl, serve: Callable[[dict[tuple[str, str], Route]], FakeMarathon], missing: int
) -> None:
    """Marathon 1.x has no ``GET /v2/deployments/{id}``."""
    server = serve(
        {
            ("GET", "/v2/apps/web"): _stuck_app,
            ("GET", "/v2/deployments/d1"): lambda: (missing, {"message": "HTTP 404 Not Found"}),
            ("GET", "/v2/deployments"): lambda: (200, [DEPLOYMENT]),
            ("GET", "/v2/queue"): lambda: (200, QUEUE),
        }
    )
    result = ctl("--url", server.url, "why", "/web")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "/web: 1/2 running, 0 staging",
        "1 instance waiting for an offer: 4 offers seen, 4 not used",
        "deployment d1 in progress (step 1/1)",
    ]
