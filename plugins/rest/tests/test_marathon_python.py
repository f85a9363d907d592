"""The real PyPI client, marathon-python 0.13, used as its users use it.

Its models reject JSON keys they do not know, so every call here also proves that
our responses stay within Marathon's shapes. Tasks, kills and the queue come alive
with the scheduler (tested with real agents elsewhere).
"""

from __future__ import annotations

import collections
import collections.abc
import threading

import pytest

# marathon 0.13 still imports these from ``collections`` (removed in Python 3.10).
for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    setattr(collections, _name, getattr(collections.abc, _name))

from marathon import MarathonClient  # noqa: E402
from marathon.exceptions import ConflictError, MarathonHttpError, NotFoundError  # noqa: E402
from marathon.models import MarathonApp, MarathonGroup  # noqa: E402

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def client(api_process_url: str) -> MarathonClient:
    return MarathonClient(api_process_url)


def test_info_leader_ping(client: MarathonClient) -> None:
    info = client.get_info()
    assert info.name == "marathon" and info.elected is True
    assert info.marathon_config.master == "local"
    assert client.get_leader()["leader"] == info.leader
    assert b"pong" in client.ping()


def test_app_lifecycle(client: MarathonClient) -> None:
    created = client.create_app(
        "py/web", MarathonApp(cmd="sleep 3600", mem=16, cpus=0.1, instances=5)
    )
    assert isinstance(created, MarathonApp) and created.id == "/py/web"
    assert len(client.list_deployments()) == 1
    app = client.get_app("/py/web")
    assert app.instances == 5 and app.tasks == [] and len(app.deployments) == 1
    assert [a.id for a in client.list_apps(embed_tasks=True, embed_counts=True)] == ["/py/web"]

    with pytest.raises(ConflictError):
        client.create_app("py/web", MarathonApp(cmd="sleep 1"))
    with pytest.raises(MarathonHttpError):  # 409: locked by the running deployment
        client.scale_app("/py/web", instances=2)
    scaled = client.scale_app("/py/web", instances=2, force=True)
    assert scaled["deploymentId"]
    assert client.get_app("/py/web").instances == 2  # visible at once

    app = client.get_app("/py/web")
    app.mem = 32
    updated = client.update_app("/py/web", app, force=True)  # the whole read object, PUT back
    assert updated["deploymentId"]
    assert client.get_app("/py/web").mem == 32

    versions = client.list_versions("/py/web")
    assert len(versions) == 3
    assert client.get_version("/py/web", versions[-1]).mem == 16

    assert client.restart_app("/py/web", force=True)["deploymentId"]
    deployment = client.list_deployments()[0]
    assert deployment.affected_apps == ["/py/web"]
    client.delete_deployment(deployment.id, force=True)
    assert client.list_deployments() == []

    client.delete_app("/py/web", force=True)
    with pytest.raises(NotFoundError):
        client.get_app("/py/web")


def test_groups(client: MarathonClient) -> None:
    group = {"id": "/shop", "apps": [{"id": "db", "cmd": "sleep 1", "instances": 1}]}
    result = client.create_group(MarathonGroup.from_json(group))
    assert result["deploymentId"]
    shop = client.get_group("/shop")
    assert [a.id for a in shop.apps] == ["/shop/db"]
    assert "/shop" in [g.id for g in client.list_groups()]
    client.delete_deployment(result["deploymentId"], force=True)  # no scheduler runs here
    assert client.scale_group("/shop", scale_by=3)["deploymentId"] is not None
    assert client.get_app("/shop/db").instances == 3
    client.delete_group("/shop", force=True)
    with pytest.raises(NotFoundError):
        client.get_group("/shop")


def test_event_stream(client: MarathonClient) -> None:
    received: list[object] = []
    attached = threading.Event()

    def listen() -> None:
        for event in client.event_stream(event_types=["event_stream_attached", "api_post_event"]):
            received.append(event)
            attached.set()
            if len(received) == 2:
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert attached.wait(10)
    client.create_app("py/events", MarathonApp(cmd="sleep 1"))
    listener.join(10)
    assert [type(e).__name__ for e in received] == [
        "MarathonEventStreamAttached",
        "MarathonApiPostEvent",
    ]
    assert received[1].app_definition["id"] == "/py/events"  # type: ignore[attr-defined]
