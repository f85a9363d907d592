"""The scheduler side: validation of MESOS containers and the TaskInfo's ``container``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
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
    MesosRuntime().build_task_info(app=parsed, task_info=info)
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


def _find_protos() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        for candidate in (
            parent / "tests" / "data" / "mesos-protos",
            parent / "shared" / "reference" / "mesos" / "protos",
        ):
            if (candidate / "mesos" / "v1" / "mesos.proto").exists():
                return candidate
    return None


@pytest.fixture(scope="module")
def mesos_pb2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    protos = _find_protos()
    if protos is None:
        pytest.skip("Mesos protos not found (shared/reference/mesos/protos)")
    grpc_tools = pytest.importorskip("grpc_tools")
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("pb")
    include = Path(grpc_tools.__file__).parent / "_proto"
    proto = str(protos / "mesos" / "v1" / "mesos.proto")
    assert protoc.main(["protoc", f"-I{protos}", f"-I{include}", f"--python_out={out}", proto]) == 0
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("mesos.v1.mesos_pb2")
    finally:
        sys.path.remove(str(out))


def test_container_info_parses_into_the_real_proto(mesos_pb2: Any) -> None:
    from google.protobuf import json_format

    volumes = [{"containerPath": "data", "hostPath": "/tmp", "mode": "RW"}]
    for body in (app(), app(volumes=volumes)):
        info = container_info(parse_app(body, context=CTX))
        parsed = json_format.ParseDict(info, mesos_pb2.ContainerInfo())
        assert not parsed.FindInitializationErrors()
        assert mesos_pb2.ContainerInfo.Type.Name(parsed.type) == "MESOS"
