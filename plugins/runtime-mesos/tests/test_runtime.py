"""The scheduler side: validation of MESOS containers and the TaskInfo's ``container``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.errors import ValidationError
from marathon_core.model.codec import parse_app
from marathon_core.model.validation import ValidationContext
from marathon_runtime_mesos.runtime import IMAGES_UNSUPPORTED, MesosRuntime, container_info

CTX = ValidationContext(container_runtimes={"MESOS": MesosRuntime()})


def app(**container: Any) -> dict[str, Any]:
    return {"id": "/m", "cmd": "sleep 1", "container": {"type": "MESOS", **container}}


def test_a_plain_mesos_container_is_valid_and_built() -> None:
    parsed = parse_app(app(), context=CTX)
    info: dict[str, Any] = {}
    MesosRuntime().build_task_info(app=parsed, task_info=info, host_ports=[])
    assert info["container"] == {"type": "MESOS", "mesos": {}}


def test_host_volumes_go_into_the_container_info() -> None:
    volumes = [{"containerPath": "data", "hostPath": "/tmp", "mode": "RO"}]
    parsed = parse_app(app(volumes=volumes), context=CTX)
    assert container_info(parsed)["volumes"] == [
        {"container_path": "data", "host_path": "/tmp", "mode": "RO"}
    ]


def test_an_image_is_a_clear_422() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_app(app(docker={"image": "busybox"}), context=CTX)
    assert raised.value.status == 422
    assert {"path": "/container/docker/image", "errors": [IMAGES_UNSUPPORTED]} in (
        raised.value.details
    )


def test_absolute_container_paths_are_rejected() -> None:
    volumes = [{"containerPath": "/data", "hostPath": "/tmp", "mode": "RW"}]
    with pytest.raises(ValidationError) as raised:
        parse_app(app(volumes=volumes), context=CTX)
    assert [v.path for v in raised.value.violations] == ["/container/volumes(0)/containerPath"]


def test_container_info_parses_into_the_real_proto(mesos_protos: SimpleNamespace) -> None:
    mesos_pb2 = mesos_protos.mesos
    volumes = [{"containerPath": "data", "hostPath": "/tmp", "mode": "RW"}]
    for body in (app(), app(volumes=volumes)):
        info = container_info(parse_app(body, context=CTX))
        parsed = mesos_protos.json_format.ParseDict(info, mesos_pb2.ContainerInfo())
        assert not parsed.FindInitializationErrors()
        assert mesos_pb2.ContainerInfo.Type.Name(parsed.type) == "MESOS"
