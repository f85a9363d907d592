"""The app page's placement table: for each agent, which of the app's checks it passes.

The queue keeps only the latest rejection and the best near miss, so "why isn't it
running?" could not say *which* agents fail *which* check. This table re-runs the
checks an offer goes through (role, cpus/mem/disk, ports, every constraint) against
each agent's free resources as the master reports them (``/master/state``) and the
app's instances already placed, one verdict per cell. It is an explanation, not the
scheduler's decision: the master may offer less than an agent has free.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from marathon_core.contracts.placement import (
    ConstraintOperator,
    OfferView,
    Placed,
    format_scalar,
)
from marathon_core.model.app import AppDefinition
from marathon_core.model.instance import Condition, Instance

# Mesos keeps 3 decimals of scalars; compare with that tolerance (as the scheduler does).
_EPSILON = 0.0005
_RANGE = re.compile(r"(\d+)-(\d+)")


@attrs.frozen
class Check:
    """One cell: ``name`` (``cpus``, ``ports``, ``hostname:UNIQUE``, ...) passed or not."""

    name: str
    ok: bool
    detail: str = ""


@attrs.frozen
class AgentFit:
    """One row: an agent and the verdict of each check."""

    hostname: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def reason(self) -> str:
        return "; ".join(c.detail for c in self.checks if not c.ok) or "fits"


def ranges(text: str) -> list[tuple[int, int]]:
    """Mesos ranges as the master's state prints them (``[31000-31005, 31010-31020]``)."""
    return [(int(b), int(e)) for b, e in _RANGE.findall(text)]


def _free_ports(total: str, used: str) -> set[int]:
    taken = {p for b, e in ranges(used) for p in range(b, e + 1)}
    return {p for b, e in ranges(total) for p in range(b, e + 1)} - taken


def _port_requests(app: AppDefinition) -> list[int]:
    """The host ports an instance needs: 0 = any port, N = exactly N."""
    if app.is_host_networking:
        return [p.port if app.require_ports else 0 for p in app.port_definitions]
    return [m.host_port for m in app.port_mappings if m.host_port is not None]


def agent_view(agent: Mapping[str, Any]) -> OfferView:
    """The agent of ``/master/state`` as constraint operators see an offer from it."""
    attributes = {
        str(name): format_scalar(value) if isinstance(value, float) else str(value)
        for name, value in agent.get("attributes", {}).items()
    }
    fault_domain = agent.get("domain", {}).get("fault_domain") or {}
    return OfferView(
        hostname=str(agent.get("hostname", "")),
        agent_id=str(agent.get("id", "")),
        attributes=attributes,
        region=fault_domain.get("region", {}).get("name"),
        zone=fault_domain.get("zone", {}).get("name"),
    )


def _placed(app: AppDefinition, instances: Sequence[Instance]) -> dict[str, Placed]:
    """Per constraint field, where the app's live instances are (as the launcher counts)."""
    views = [
        OfferView(
            hostname=i.agent.host,
            agent_id=i.agent.agent_id or "",
            attributes=i.agent.attributes,
            region=i.agent.region,
            zone=i.agent.zone,
        )
        for i in sorted(instances, key=lambda i: i.since.millis if i.since is not None else 0)
        if i.agent is not None
        and i.condition is not Condition.SCHEDULED
        and not i.condition.is_terminal
        and not i.condition.is_lost
    ]
    return {
        c.field: Placed.of((v.attribute(c.field) for v in views), instances=app.instances)
        for c in app.constraints
    }


def _resource_checks(app: AppDefinition, agent: Mapping[str, Any]) -> list[Check]:
    total = agent.get("resources", {})
    used = agent.get("used_resources", {})
    checks = []
    for name, needed in (("cpus", app.cpus), ("mem", app.mem), ("disk", app.disk)):
        free = float(total.get(name, 0)) - float(used.get(name, 0))
        ok = needed <= 0 or free + _EPSILON >= needed
        checks.append(Check(name, ok, "" if ok else f"needs {needed:g} {name}, {free:g} free"))
    requests = _port_requests(app)
    free_ports = _free_ports(str(total.get("ports", "")), str(used.get("ports", "")))
    exact = [p for p in requests if p]
    missing = [p for p in exact if p not in free_ports]
    anywhere = len(requests) - len(exact)
    if missing:
        checks.append(Check("ports", False, f"needs ports {missing}, not free"))
    elif anywhere > len(free_ports) - len(exact):
        checks.append(Check("ports", False, f"needs {anywhere} port(s), {len(free_ports)} free"))
    else:
        checks.append(Check("ports", True))
    return checks


def placement_table(
    app: AppDefinition,
    agents: Sequence[Mapping[str, Any]],
    instances: Sequence[Instance],
    operators: Mapping[str, ConstraintOperator],
    framework_role: str,
) -> list[AgentFit]:
    """One row per agent (by hostname): role, resources, ports, then each constraint
    on its own (the scheduler stops at the first failing one; the table shows all)."""
    placed = _placed(app, instances)
    role_ok = app.role == framework_role
    role = Check(
        "role",
        role_ok,
        "" if role_ok else f"offers are for role {framework_role}, app needs role {app.role}",
    )
    rows = []
    for agent in sorted(agents, key=lambda a: str(a.get("hostname", ""))):
        view = agent_view(agent)
        checks = [role, *_resource_checks(app, agent)]
        for constraint in app.constraints:
            name = constraint.operator.upper()
            label = ":".join(x for x in (constraint.field, name, constraint.value) if x)
            operator = operators.get(name)
            if operator is None:
                checks.append(Check(label, False, f"no plugin provides operator {name}"))
                continue
            field_placed = placed.get(constraint.field) or Placed.empty(instances=app.instances)
            fit = operator.filter(view, constraint.field, constraint.value, field_placed)
            checks.append(Check(label, fit.ok, fit.reason))
        rows.append(AgentFit(hostname=view.hostname, checks=tuple(checks)))
    return rows
