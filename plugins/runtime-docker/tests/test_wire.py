"""What a framework sees of Docker tasks on the wire: the v1 UPDATE events, read as the
real protos define them, from an agent in a master process of its own.

Marathon's own events carry only a status message; a framework that reads the Mesos
stream (or a Marathon replacement) relies on the reason and the source.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from marathon_core.testing.mesos_protos import parse_strict
from marathon_mesos_local.testing import MasterProcess, SchedulerClient, task_info
from marathon_runtime_docker.testing import BUSYBOX, Dockerd

pytestmark = [pytest.mark.docker]


@pytest.fixture
async def framework(dockerd: Dockerd, tmp_path: Path) -> AsyncIterator[SchedulerClient]:
    flags = ("--agents", "1", "--containerizers", "mesos,docker")
    master = MasterProcess(tmp_path, *flags, "--docker_socket", dockerd.socket)
    await master.start()
    client = SchedulerClient(master.url)
    try:
        async with trio.open_nursery() as nursery:
            await client.subscribe(nursery, name="wire-test")
            yield client
            await client.disconnect()
            nursery.cancel_scope.cancel()
    finally:
        await client.aclose()
        await master.stop()


async def failed_update(
    client: SchedulerClient, task_id: str, command: str, *, image: str, mem: float
) -> dict[str, Any]:
    offer = (await client.wait_offers(timeout=30))[0]
    container = {"type": "DOCKER", "docker": {"image": image, "network": "HOST"}}
    info = task_info(offer, task_id, command, cpus=0.1, mem=mem, container=container)
    await client.launch([offer], [info])
    status: dict[str, Any] = await client.wait_update(task_id, "TASK_FAILED", timeout=30)
    return status


def wire_status(protos: SimpleNamespace, status: dict[str, Any]) -> Any:
    return parse_strict(protos, status, protos.mesos.TaskStatus)


async def test_an_oom_kill_is_task_failed_with_the_memory_reason(
    framework: SchedulerClient, mesos_protos: SimpleNamespace
) -> None:
    hog = "x=a; while true; do x=$x$x; done"
    status = await failed_update(framework, "hog", hog, image=BUSYBOX, mem=32)
    parsed = wire_status(mesos_protos, status)
    assert mesos_protos.mesos.TaskStatus.Reason.Name(parsed.reason) == (
        "REASON_CONTAINER_LIMITATION_MEMORY"
    )
    assert mesos_protos.mesos.TaskStatus.Source.Name(parsed.source) == "SOURCE_AGENT"
    assert "Memory limit exceeded" in parsed.message
    assert "TASK_RUNNING" in framework.states("hog")  # it ran, then hit its limit


async def test_a_missing_image_is_a_launch_failure_naming_the_image(
    framework: SchedulerClient, mesos_protos: SimpleNamespace
) -> None:
    with trio.fail_after(10):
        status = await failed_update(
            framework, "ghost", "true", image="127.0.0.1:9/no/such:image", mem=32
        )
    parsed = wire_status(mesos_protos, status)
    assert mesos_protos.mesos.TaskStatus.Reason.Name(parsed.reason) == (
        "REASON_CONTAINER_LAUNCH_FAILED"
    )
    assert "127.0.0.1:9/no/such:image" in parsed.message
    assert "TASK_RUNNING" not in framework.states("ghost")
