"""``TaskInfo.health_check`` validation by the master: Mesos's rules and words.

Mesos (``src/common/validation.cpp``, ``validateHealthCheck``, called by the master's
``validateTask`` after the kill policy and before the resources) refuses a task whose
health check it could not run: the task gets TASK_ERROR with REASON_TASK_INVALID and
"Task uses invalid health check: ...". Every bad check here is a valid wire message
(it parses into the real ``HealthCheck`` proto): the master, not the parser, refuses it.
"""

from __future__ import annotations

from typing import Any

import pytest

from marathon_core.testing.mesos_protos import parse_strict
from marathon_mesos_local.master.validation import health_check_problem
from marathon_mesos_local.testing import executor_info, launch_group_operation, task_info

HTTP = {"type": "HTTP", "http": {"port": 8080, "path": "/health"}}

#: (health check, Mesos's message) pairs.
INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "untyped": ({"http": {"port": 8080}}, "HealthCheck must specify 'type'"),
    "unknown type": ({"type": "UNKNOWN"}, "'UNKNOWN' is not a valid health check type"),
    "http without http": (
        {"type": "HTTP", "tcp": {"port": 8080}},
        "Expecting 'http' to be set for HTTP health check",
    ),
    "tcp without tcp": ({"type": "TCP"}, "Expecting 'tcp' to be set for TCP health check"),
    "command without command": (
        {"type": "COMMAND"},
        "Expecting 'command' to be set for COMMAND health check",
    ),
    "shell command without value": (
        {"type": "COMMAND", "command": {"shell": True}},
        "Command health check must contain 'shell command'",
    ),
    "executable without value": (
        {"type": "COMMAND", "command": {"shell": False, "arguments": ["check"]}},
        "Command health check must contain 'executable path'",
    ),
    "environment without value": (
        {
            "type": "COMMAND",
            "command": {"value": "true", "environment": {"variables": [{"name": "X"}]}},
        },
        "Health check's `CommandInfo` is invalid: Environment variable 'X' of type "
        "'VALUE' must have a value set",
    ),
    "scheme": (
        {"type": "HTTP", "http": {"port": 8080, "scheme": "ftp"}},
        "Unsupported HTTP health check scheme: 'ftp'",
    ),
    "relative path": (
        {"type": "HTTP", "http": {"port": 8080, "path": "health"}},
        "The path 'health' of HTTP health check must start with '/'",
    ),
    "negative delay": (
        {**HTTP, "delay_seconds": -1.0},
        "Expecting 'delay_seconds' to be non-negative",
    ),
    "negative grace": (
        {**HTTP, "grace_period_seconds": -0.5},
        "Expecting 'grace_period_seconds' to be non-negative",
    ),
    "negative interval": (
        {**HTTP, "interval_seconds": -10.0},
        "Expecting 'interval_seconds' to be non-negative",
    ),
    "negative timeout": (
        {"type": "TCP", "tcp": {"port": 1}, "timeout_seconds": -1.0},
        "Expecting 'timeout_seconds' to be non-negative",
    ),
}

VALID: dict[str, dict[str, Any]] = {
    "http": {**HTTP, "delay_seconds": 0.0, "timeout_seconds": 0.0},
    "https": {"type": "HTTP", "http": {"port": 443, "scheme": "https"}},
    "tcp": {"type": "TCP", "tcp": {"port": 8080}},
    "command": {"type": "COMMAND", "command": {"value": "true"}},
    "executable": {"type": "COMMAND", "command": {"shell": False, "value": "/bin/true"}},
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_health_checks_get_mesos_messages(name: str, mesos_protos: Any) -> None:
    check, message = INVALID[name]
    parse_strict(mesos_protos, check, mesos_protos.mesos.HealthCheck)
    assert health_check_problem(check) == message


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_health_checks_pass(name: str, mesos_protos: Any) -> None:
    parse_strict(mesos_protos, VALID[name], mesos_protos.mesos.HealthCheck)
    assert health_check_problem(VALID[name]) is None


@pytest.mark.cluster(agents=0, simulated_agents=1, simulated_task_step=0.02)
async def test_a_task_with_an_invalid_health_check_gets_task_error(
    cluster: Any, schedulers: Any, nursery: Any
) -> None:
    """The master refuses it in LAUNCH (REASON_TASK_INVALID) and in LAUNCH_GROUP
    (every task of the group, REASON_TASK_GROUP_INVALID); a valid check launches."""
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    relative, relative_message = INVALID["relative path"]
    untyped, untyped_message = INVALID["untyped"]
    bad = task_info(offer, "bad.1", "sleep 30", health_check=relative)
    good = task_info(offer, "good.1", "sleep 30", health_check=VALID["tcp"])
    grouped = [
        task_info(offer, "g.1", "sleep 30"),
        task_info(offer, "g.2", "sleep 30", health_check=untyped),
    ]
    operations = [
        {"type": "LAUNCH", "launch": {"task_infos": [bad, good]}},
        launch_group_operation(executor_info(client.framework_id, "g.executor"), grouped),
    ]
    response = await client.accept([offer], operations, filters={"refuse_seconds": 0})
    assert response.status_code == 202, response.text

    error = await client.wait_update("bad.1", "TASK_ERROR")
    assert error["reason"] == "REASON_TASK_INVALID"
    assert error["source"] == "SOURCE_MASTER"
    assert error["message"] == f"Task uses invalid health check: {relative_message}"
    for task_id in ("g.1", "g.2"):
        group_error = await client.wait_update(task_id, "TASK_ERROR")
        assert group_error["reason"] == "REASON_TASK_GROUP_INVALID"
        assert group_error["message"] == (
            f"Task 'g.2' is invalid: Task uses invalid health check: {untyped_message}"
        )
    await client.wait_update("good.1", "TASK_RUNNING")
    assert sorted(cluster.master.frameworks[client.framework_id].tasks) == ["good.1"]
