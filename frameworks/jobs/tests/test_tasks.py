"""Jobs as Mesos TaskInfos, checked against the real protos."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.framework import Offer, Resource
from marathon_core.plugins import get_plugin_host
from marathon_core.testing.mesos_protos import parse_strict
from marathon_jobs.book import Run
from marathon_jobs.model import parse_job
from marathon_jobs.tasks import (
    Placement,
    agent_fields,
    agent_view,
    fits,
    placed_of,
    stored_view,
    task_info,
)

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
    assert fits(unique, OFFER, plugins, placed_of(unique, [], runs=1))
    elsewhere = stored_view("S2", [("hostname", "h2"), ("rack", "r1")])
    assert fits(unique, OFFER, plugins, placed_of(unique, [elsewhere], runs=2))
    assert not fits(unique, OFFER, plugins, placed_of(unique, [agent_view(OFFER)], runs=2))


def test_attribute_constraints_count_the_runs_on_other_agents() -> None:
    """MAX_PER and GROUP_BY on an attribute see every run of the job on that attribute's
    value, not only the runs on the offer's own agent."""
    plugins = placement()
    r1_elsewhere = stored_view("S2", [("hostname", "h2"), ("rack", "r1")])
    assert r1_elsewhere.attribute("rack") == "r1" and r1_elsewhere.hostname == "h2"
    r2 = stored_view("S3", [("hostname", "h3"), ("rack", "r2")])
    max_per = job(constraints=[["rack", "MAX_PER", "1"]])
    assert fits(max_per, OFFER, plugins, placed_of(max_per, [r2], runs=2))
    assert not fits(max_per, OFFER, plugins, placed_of(max_per, [r1_elsewhere], runs=2))
    group_by = job(constraints=[["rack", "GROUP_BY", "2"]])
    # Four runs over two racks: r1 already has two of them, r2 one.
    views = [r1_elsewhere, r1_elsewhere, r2]
    assert not fits(group_by, OFFER, plugins, placed_of(group_by, views, runs=4))
    assert fits(group_by, OFFER, plugins, placed_of(group_by, views[1:], runs=4))


def test_the_agent_fields_round_trip() -> None:
    fields = agent_fields(agent_view(OFFER))
    assert fields == (("hostname", "h1"), ("rack", "r1"))
    view = stored_view("S1", fields)
    assert (view.hostname, view.attribute("rack"), view.attribute("@zone")) == ("h1", "r1", None)
    run = Run("j@1", "j", 1.0, None, agent_id="S1", agent_fields=fields)
    assert Run.from_json(json.loads(json.dumps(run.to_json()))) == run
