"""LAUNCH_GROUP validation: Mesos's checks, order and words (``validation.cpp``).

A task group is launched whole or not at all: when anything is wrong, every task of
the group gets TASK_ERROR with REASON_TASK_GROUP_INVALID from the master. These are
master-side checks, so one simulated agent is enough.
"""

from __future__ import annotations

from typing import Any

import pytest

from marathon_mesos_local.testing import executor_info, launch_group_operation, task_info

pytestmark = pytest.mark.cluster(agents=0, simulated_agents=1, simulated_task_step=0.02)


def _without(resources: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["name"] != name]


async def test_invalid_groups_get_task_error_with_mesos_reasons(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    fid = client.framework_id
    agent_id = offer["agent_id"]["value"]

    def executor(name: str, **extra: Any) -> dict[str, Any]:
        return executor_info(fid, f"{name}.executor", **extra)

    def task(task_id: str, command: str = "sleep 3600", **extra: Any) -> dict[str, Any]:
        return task_info(offer, task_id, command, **extra)

    no_cpus = executor("c")
    no_cpus["resources"] = _without(no_cpus["resources"], "cpus")
    no_disk = executor("n")
    no_disk["resources"] = _without(no_disk["resources"], "disk")
    untyped = executor("t")
    del untyped["type"]
    anonymous = executor("a")
    del anonymous["framework_id"]
    stranger = {**task("w.1"), "agent_id": {"value": "elsewhere"}}
    docker = task("dk.1", container={"type": "DOCKER", "docker": {"image": "busybox"}})
    own = task("o.1", executor=executor("other"))
    cases = {
        # group operation -> the message each of its tasks gets
        "dup": (
            launch_group_operation(executor("d"), [task("d.1"), task("d.1")]),
            "Task 'd.1' is invalid: Task has duplicate ID: d.1",
        ),
        "in use": (
            launch_group_operation(executor("u"), [task("ok.1"), task("u.2")]),
            "Task 'ok.1' is invalid: Task has duplicate ID: ok.1",
        ),
        "agent": (
            launch_group_operation(executor("w"), [stranger]),
            f"Task 'w.1' is invalid: Task uses invalid agent elsewhere while agent {agent_id} "
            "is expected",
        ),
        "docker": (
            launch_group_operation(executor("dk"), [docker]),
            "Task 'dk.1' is invalid: Docker ContainerInfo is not supported on the task",
        ),
        "custom": (
            launch_group_operation(executor("x", type="CUSTOM"), [task("x.1")]),
            "'ExecutorInfo.command' must be set for 'CUSTOM' executor",
        ),
        "default with command": (
            launch_group_operation(executor("y", command={"value": "run"}), [task("y.1")]),
            "'ExecutorInfo.command' must not be set for 'DEFAULT' executor",
        ),
        "no framework id": (
            launch_group_operation(anonymous, [task("a.1")]),
            "'ExecutorInfo.framework_id' must be set",
        ),
        "untyped": (
            launch_group_operation(untyped, [task("t.1")]),
            "'ExecutorInfo.type' must be set",
        ),
        "own executor": (
            launch_group_operation(executor("o"), [own]),
            "The `ExecutorInfo` of task 'o.1' is different from executor 'o.executor'",
        ),
        "no cpus": (
            launch_group_operation(no_cpus, [task("c.1")]),
            "Executor 'c.executor' uses less CPUs (None) than the minimum required (0.01)",
        ),
        "little mem": (
            launch_group_operation(executor("m", mem=16), [task("m.1")]),
            "Executor 'm.executor' uses less memory (16MB) than the minimum required (32MB)",
        ),
        "no disk": (
            launch_group_operation(no_disk, [task("n.1")]),
            "Executor 'n.executor' uses no disk",
        ),
        "with id": (
            {**launch_group_operation(executor("i"), [task("i.1")]), "id": {"value": "op"}},
            "The `id` field cannot be set on LAUNCH_GROUP operations",
        ),
    }
    same_port = [task("p.1", ports=1), task("p.2", ports=1)]
    overlapping = launch_group_operation(executor("p"), same_port)
    too_big = launch_group_operation(executor("b"), [task("b.1", cpus=99), task("b.2")])
    operations = [
        launch_group_operation(executor("ok"), [task("ok.1")]),  # valid: starts
        *(operation for operation, _ in cases.values()),
        overlapping,
        too_big,
        launch_group_operation(executor("ok2"), [task("ok2.1"), task("ok2.2")]),  # valid too
    ]
    response = await client.accept([offer], operations, filters={"refuse_seconds": 0})
    assert response.status_code == 202, response.text

    for name, (operation, message) in cases.items():
        for group_task in operation["launch_group"]["task_group"]["tasks"]:
            error = await client.wait_update(group_task["task_id"]["value"], "TASK_ERROR")
            assert error["message"] == message, name
            assert error["reason"] == "REASON_TASK_GROUP_INVALID"
            assert error["source"] == "SOURCE_MASTER" and "uuid" not in error
            assert error["agent_id"] == group_task["agent_id"]
    overlap = await client.wait_update("p.2", "TASK_ERROR")
    assert overlap["message"].startswith(
        "There are overlapping resources in the task group's task resources "
    )
    assert (await client.wait_update("p.1", "TASK_ERROR"))["message"] == overlap["message"]
    for task_id in ("b.1", "b.2"):
        big = await client.wait_update(task_id, "TASK_ERROR")
        assert big["message"].startswith(
            "Total resources cpus:99.2;mem:96;disk:10 required by task group and its executor "
            "are more than available "
        )
    for task_id in ("ok.1", "ok2.1", "ok2.2"):
        await client.wait_update(task_id, "TASK_RUNNING")
    # Nothing of the refused groups was kept: no task, no executor.
    framework = cluster.master.frameworks[fid]
    assert sorted(framework.tasks) == ["ok.1", "ok2.1", "ok2.2"]
    assert sorted(e.id for e in framework.executors.values()) == ["ok.executor", "ok2.executor"]


async def test_groups_on_invalid_offers_are_lost_or_dropped(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    offer = (await client.wait_offers())[0]
    gone = {**offer, "id": {"value": "no-such-offer"}}
    executor = executor_info(client.framework_id, "l.executor")
    tasks = [task_info(offer, "l.1", "sleep 1"), task_info(offer, "l.2", "sleep 1")]
    await client.launch_group([gone], executor, tasks)
    for task_id in ("l.1", "l.2"):
        dropped = await client.wait_update(task_id, "TASK_DROPPED")
        assert dropped["reason"] == "REASON_INVALID_OFFERS"
        assert dropped["message"] == (
            "Task launched with invalid offers: Offer no-such-offer is no longer valid"
        )
