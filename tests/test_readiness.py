"""The leader's readiness checks against a real HTTP server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest
import trio

from marathon_core.leader.readiness import ReadinessMonitor, readiness_target
from marathon_core.model.app import AppDefinition, PortDefinition, ReadinessCheck
from marathon_core.model.ids import PathId
from marathon_core.model.instance import (
    AgentInfo,
    Condition,
    Instance,
    InstanceId,
    Task,
    TaskId,
)

APP = PathId.parse("/ready")


class Responder:
    """Answers ``status`` to every GET and counts the requests."""

    def __init__(self) -> None:
        self.status = 503
        self.requests = 0
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                responder.requests += 1
                body = b"not yet" if responder.status != 200 else b"ok"
                self.send_response(responder.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]


@pytest.fixture
def responder() -> Iterator[Responder]:
    r = Responder()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@attrs.define
class Tracker:
    instances: dict[InstanceId, Instance] = attrs.field(factory=dict)

    def get(self, instance_id: InstanceId) -> Instance | None:
        return self.instances.get(instance_id)


def app_with(check: ReadinessCheck) -> AppDefinition:
    return AppDefinition(
        id=APP,
        cmd="serve",
        port_definitions=(PortDefinition(0, name="admin"), PortDefinition(0, name="http")),
        readiness_checks=(check,),
    )


def running(port: int) -> Instance:
    instance_id = InstanceId.new(APP)
    task = Task(TaskId.for_instance(instance_id), Condition.RUNNING, host_ports=(1, port))
    return Instance(
        instance_id, condition=Condition.RUNNING, agent=AgentInfo("127.0.0.1"), tasks=(task,)
    )


def test_the_port_is_the_one_named_by_port_name() -> None:
    check = ReadinessCheck(port_name="http")
    instance = running(4242)
    assert readiness_target(check, app_with(check), instance) == ("127.0.0.1", 4242)
    assert readiness_target(ReadinessCheck(port_name="nope"), app_with(check), instance) is None


async def test_an_instance_is_ready_once_a_listed_status_comes_back(
    responder: Responder, nursery: trio.Nursery
) -> None:
    check = ReadinessCheck(
        port_name="http",
        path="/ready",
        interval_seconds=2,
        timeout_seconds=1,
        http_status_codes_for_ready=(200, 204),
        preserve_last_response=True,
    )
    app, instance = app_with(check), running(responder.port)
    tracker = Tracker({instance.instance_id: instance})
    monitor = ReadinessMonitor(tracker)
    await nursery.start(monitor.run)
    assert not monitor.is_ready(app, instance)  # starts the checks
    with trio.fail_after(10):
        while responder.requests == 0 or monitor.results(APP)[0].last_response is None:
            await trio.sleep(0.05)
    (result,) = monitor.results(APP)
    assert not result.ready
    assert result.last_response is not None and result.last_response.status == 503
    assert "status 503" in (result.last_failure or "")
    responder.status = 200
    with trio.fail_after(10):
        while not monitor.is_ready(app, instance):
            await trio.sleep(0.05)
    assert monitor.results_json(APP) == [
        {
            "name": "readinessCheck",
            "taskId": str(instance.task.task_id),  # type: ignore[union-attr]
            "ready": True,
            "lastResponse": {"status": 200, "contentType": "text/plain", "body": "ok"},
        }
    ]
    asked = responder.requests
    await trio.sleep(2.5)
    assert responder.requests == asked  # checks stop once ready
    monitor.release(APP)
    assert monitor.results(APP) == []


async def test_without_preserve_last_response_no_response_is_shown(
    responder: Responder, nursery: trio.Nursery
) -> None:
    check = ReadinessCheck(port_name="http", interval_seconds=2, timeout_seconds=1)
    app, instance = app_with(check), running(responder.port)
    monitor = ReadinessMonitor(Tracker({instance.instance_id: instance}))
    await nursery.start(monitor.run)
    monitor.is_ready(app, instance)
    with trio.fail_after(10):
        while responder.requests == 0 or monitor.results(APP)[0].last_failure is None:
            await trio.sleep(0.05)
    assert "lastResponse" not in monitor.results_json(APP)[0]
    assert monitor.results_json(APP)[0]["ready"] is False


async def test_an_unreachable_task_is_not_ready_and_says_why(nursery: trio.Nursery) -> None:
    check = ReadinessCheck(port_name="http", interval_seconds=2, timeout_seconds=1)
    app, instance = app_with(check), running(1)  # nothing listens on port 1
    monitor = ReadinessMonitor(Tracker({instance.instance_id: instance}))
    await nursery.start(monitor.run)
    monitor.is_ready(app, instance)
    with trio.fail_after(10):
        while monitor.results(APP)[0].last_failure is None:
            await trio.sleep(0.05)
    assert "ConnectError" in (monitor.results(APP)[0].last_failure or "")
    assert not monitor.is_ready(app, instance)


def test_apps_without_readiness_checks_are_always_ready() -> None:
    monitor = ReadinessMonitor(Tracker())
    app = AppDefinition(id=APP, cmd="x")
    assert monitor.is_ready(app, Instance(InstanceId.new(APP)))


async def test_several_instances_of_an_app_are_checked_at_once(
    responder: Responder, nursery: trio.Nursery
) -> None:
    responder.status = 200
    check = ReadinessCheck(port_name="http", interval_seconds=2, timeout_seconds=1)
    app = app_with(check)
    instances = [running(responder.port) for _ in range(3)]
    monitor = ReadinessMonitor(Tracker({i.instance_id: i for i in instances}))
    await nursery.start(monitor.run)
    with trio.fail_after(10):
        while not all([monitor.is_ready(app, i) for i in instances]):
            await trio.sleep(0.05)
    assert len(monitor.results(APP)) == 3
    monitor.release(APP)
    assert monitor.results(APP) == []
