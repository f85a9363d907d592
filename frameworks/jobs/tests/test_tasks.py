"""Jobs as Mesos TaskInfos, checked against the real protos."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.framework import Offer, Resource
from marathon_core.plugins import get_plugin_host
from marathon_core.testing.mesos_protos import parse_strict
from marathon_jobs.book import Run
from marathon_jobs.model import parse_job
from marathon_jobs.tasks import Placement, fits, task_info

OFFER = Offer(
    "o1", "S1", "h1",
    resources=tuple(
        Resource(n, "SCALAR", scalar=v, echoed={"role": "*", "allocation_info": {"role": "*"}})
        for n, v in (("cpus", 1.0), ("mem", 512.0), ("disk", 100.0))
    ),
    attributes={"rack": "r1"},
)  # fmt: skip


def placement() -> Placement:
    host = get_plugin_host()
    return Placement(host.constraint_operators(), host.container_runtimes())


def job(**fields: Any) -> Any:
    data = {"name": "j", "command": "ls", "schedule": "R1//PT1M", "mem": 64, "disk": 10,
            "environmentVariables": [{"name": "A", "value": "1"}],
            "uris": ["http://x/a.tgz"], "arguments": ["-l"], **fields}  # fmt: skip
    return parse_job(data, dependent=False, now=datetime.now(UTC))


@pytest.mark.parametrize(
    "container",
    [None, {"type": "MESOS"}, {"type": "DOCKER", "image": "busybox", "network": "BRIDGE",
     "volumes": [{"containerPath": "/data", "hostPath": "/tmp", "mode": "RO"}]}],
)  # fmt: skip
def test_task_infos_parse_as_mesos_does(
    container: dict[str, Any] | None, mesos_protos: SimpleNamespace
) -> None:
    run = Run("j@1", "j", 1.0, None, task_id="ct:1000:0:j:")
    info = task_info(run, job(container=container), OFFER, placement())
    parse_strict(mesos_protos, info, mesos_protos.mesos.TaskInfo)
    env = {v["name"]: v["value"] for v in info["command"]["environment"]["variables"]}
    assert env["A"] == "1" and env["CHRONOS_JOB_SCHEDULED_TIME"] == "1970-01-01T00:00:01.000Z"
    assert info["command"]["uris"] == [{"value": "http://x/a.tgz", "extract": True}]


def test_constraints_are_the_plugins_verdicts() -> None:
    plugins = placement()
    assert fits(job(constraints=[["rack", "LIKE", "r[12]"]]), OFFER, plugins, {})
    assert not fits(job(constraints=[["rack", "UNLIKE", "r1"]]), OFFER, plugins, {})
    unique = job(constraints=[["hostname", "UNIQUE"]])
    assert fits(unique, OFFER, plugins, {"hostname": []})
    assert not fits(unique, OFFER, plugins, {"hostname": ["h1"]})
