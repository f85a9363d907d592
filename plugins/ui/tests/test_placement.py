"""The placement table's builder, on agents as ``/master/state`` lists them."""

from __future__ import annotations

from typing import Any

import marathon_constraints.plugin
from marathon_core.model.app import AppDefinition, Constraint, PortDefinition
from marathon_core.model.ids import PathId
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId
from marathon_ui.placement import placement_table

APP = PathId.parse("/svc/api")
OPERATORS = marathon_constraints.plugin.marathon_constraint_operators()


def agent(host: str, cpus: float = 4, used_cpus: float = 0, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{host}-S0",
        "hostname": host,
        "resources": {"cpus": cpus, "mem": 1024.0, "disk": 1024.0, "ports": "[31000-31001]"},
        "used_resources": {"cpus": used_cpus, "mem": 0.0, "disk": 0.0},
        **extra,
    }


def running_on(host: str) -> Instance:
    return Instance(
        instance_id=InstanceId.new(APP),
        condition=Condition.RUNNING,
        agent=AgentInfo(host=host, agent_id=f"{host}-S0", attributes={"rack": "r1"}),
    )


def cells(row: Any) -> dict[str, bool]:
    return {c.name: c.ok for c in row.checks}


def test_each_agent_gets_a_verdict_per_check() -> None:
    app = AppDefinition(
        id=APP,
        cmd="sleep 1",
        cpus=2,
        instances=3,
        constraints=(Constraint("hostname", "UNIQUE"), Constraint("rack", "CLUSTER", "r1")),
    )
    agents = [
        agent("b", attributes={"rack": "r1"}),
        agent("a", attributes={"rack": "r1"}),
        agent("c", used_cpus=3, attributes={"rack": "r2"}),
    ]
    rows = placement_table(app, agents, [running_on("a")], OPERATORS, "*")
    assert [r.hostname for r in rows] == ["a", "b", "c"]
    names = ["role", "cpus", "mem", "disk", "ports", "hostname:UNIQUE", "rack:CLUSTER:r1"]
    assert [c.name for c in rows[0].checks] == names
    assert not cells(rows[0])["hostname:UNIQUE"]
    assert "a" in rows[0].reason
    assert rows[1].ok and rows[1].reason == "fits"
    c = cells(rows[2])
    assert not c["cpus"] and not c["rack:CLUSTER:r1"] and c["hostname:UNIQUE"]
    assert "needs 2 cpus, 1 free" in rows[2].reason


def test_role_and_ports() -> None:
    app = AppDefinition(
        id=APP,
        cmd="sleep 1",
        role="gpu",
        port_definitions=(PortDefinition(31005), PortDefinition(0)),
        require_ports=True,
    )
    (row,) = placement_table(app, [agent("a")], [], OPERATORS, "*")
    c = cells(row)
    assert not c["role"] and not c["ports"] and c["cpus"]
    assert "app needs role gpu" in row.reason
    assert "needs ports [31005]" in row.reason
    loose = AppDefinition(id=APP, cmd="sleep 1", port_definitions=(PortDefinition(0),) * 3)
    (row,) = placement_table(loose, [agent("a")], [], OPERATORS, "*")
    assert row.reason == "needs 3 port(s), 2 free"
