"""Matching one app's instance against one offer: role, resources, ports, constraints.

Pure and synchronous. :class:`OfferPool` holds what is left of an offer while several
instances are placed into it in one round; :func:`match` checks one instance and,
when it fits, :meth:`OfferPool.take` removes what the launch uses. Checks run cheap
first (role, scalars, ports), then the constraint operators; every failing check is
recorded, so ``/v2/queue`` can count each reason (Marathon's ``NoOfferMatchReason``)
and explain the near miss ("needs 2 cpus, best offer has 1.5").
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from marathon_core.contracts.placement import (
    ConstraintOperator,
    Fit,
    NoOfferMatchReason,
    OfferView,
    Placed,
)
from marathon_core.mesos.events import ECHOED_FIELDS, Offer
from marathon_core.model.app import AppDefinition

__all__ = [
    "Match",
    "OfferPool",
    "Rejection",
    "assign_ports",
    "constraint_fit",
    "match",
    "port_requests",
]

log = logging.getLogger(__name__)

Json = dict[str, Any]
Reason = NoOfferMatchReason

_SCALAR_REASONS = {
    "cpus": Reason.INSUFFICIENT_CPUS,
    "mem": Reason.INSUFFICIENT_MEMORY,
    "disk": Reason.INSUFFICIENT_DISK,
    "gpus": Reason.INSUFFICIENT_GPUS,
}
# Mesos keeps 3 decimals of scalars; compare with that tolerance.
_EPSILON = 0.0005


def _template(resource: Mapping[str, Any]) -> Json:
    """The echoed fields of a launched resource (matched back by :meth:`OfferPool.take`)."""
    return {key: resource[key] for key in ECHOED_FIELDS if key in resource}


@attrs.define
class _Scalar:
    template: Json
    reservation_role: str
    amount: float


@attrs.define
class _Ranges:
    template: Json
    reservation_role: str
    ranges: list[tuple[int, int]]


class OfferPool:
    """What remains of one offer during a matching round."""

    def __init__(self, offer: Offer) -> None:
        self.offer_id = offer.id
        self.agent_id = offer.agent_id
        self.hostname = offer.hostname
        self.role = offer.role
        self.view = OfferView(
            hostname=offer.hostname,
            agent_id=offer.agent_id,
            attributes=offer.attributes,
            region=offer.region,
            zone=offer.zone,
        )
        self.scalars: dict[str, list[_Scalar]] = {}
        self.ports: list[_Ranges] = []
        for resource in offer.resources:
            if resource.revocable or resource.persistent:
                continue  # neither revocable nor persistent-volume resources for plain apps
            template = dict(resource.echoed)
            role = resource.reservation_role
            if resource.type == "SCALAR" and resource.scalar is not None:
                self.scalars.setdefault(resource.name, []).append(
                    _Scalar(template, role, resource.scalar)
                )
            elif resource.type == "RANGES" and resource.name == "ports":
                self.ports.append(_Ranges(template, role, list(resource.ranges)))
        self.launched = 0

    def scalar(self, name: str, roles: frozenset[str] | None = None) -> float:
        """The amount of ``name`` left (from resources of ``roles``; None = any)."""
        return sum(
            e.amount
            for e in self.scalars.get(name, ())
            if roles is None or e.reservation_role in roles
        )

    def port_ranges(self, roles: frozenset[str] | None = None) -> list[tuple[int, int]]:
        return [
            r for e in self.ports if roles is None or e.reservation_role in roles for r in e.ranges
        ]

    def take(self, match: Match) -> None:
        """Remove what ``match`` launches from the pool (a tentative placement)."""
        for resource in match.resources:
            name = resource["name"]
            if resource["type"] == "SCALAR":
                amount = float(resource["scalar"]["value"])
                for entry in self.scalars.get(name, ()):
                    if entry.template == _template(resource):
                        entry.amount = max(0.0, entry.amount - amount)
                        break
        taken = set(match.host_ports)
        for ranges in self.ports:
            ranges.ranges = _without(ranges.ranges, taken)
        self.launched += 1


def _without(ranges: Iterable[tuple[int, int]], ports: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for begin, end in ranges:
        cut = sorted(p for p in ports if begin <= p <= end)
        start = begin
        for port in cut:
            if start <= port - 1:
                out.append((start, port - 1))
            start = port + 1
        if start <= end:
            out.append((start, end))
    return out


def port_requests(app: AppDefinition) -> list[int]:
    """The host ports an instance needs: 0 = any offered port, N = exactly N."""
    if app.is_host_networking:
        if app.require_ports:
            return [p.port for p in app.port_definitions]
        return [0 for _ in app.port_definitions]
    return [m.host_port for m in app.port_mappings if m.host_port is not None]


def assign_ports(
    requests: Sequence[int], ranges: Sequence[tuple[int, int]], rng: random.Random
) -> list[int] | None:
    """Host ports for ``requests`` from the offered ``ranges``, or None if they don't fit.

    Exact requests must lie in a range; the others are drawn at random (as Marathon
    does, so instances on one agent don't all collide on the first port).
    """
    chosen: list[int] = []
    used: set[int] = set()
    for port in requests:
        if port:
            if port in used or not any(b <= port <= e for b, e in ranges):
                return None
            used.add(port)
    total = sum(e - b + 1 for b, e in ranges)
    wanted = sum(1 for p in requests if not p)
    if wanted > total - len(used):
        return None
    for port in requests:
        if port:
            chosen.append(port)
            continue
        pick = _random_port(ranges, total, used, rng)
        used.add(pick)
        chosen.append(pick)
    return chosen


def _random_port(
    ranges: Sequence[tuple[int, int]], total: int, used: set[int], rng: random.Random
) -> int:
    for _ in range(32):
        offset = rng.randrange(total)
        for begin, end in ranges:
            size = end - begin + 1
            if offset < size:
                port = begin + offset
                break
            offset -= size
        if port not in used:
            return port
    for begin, end in ranges:  # crowded: take the first free one
        for port in range(begin, end + 1):
            if port not in used:
                return port
    raise AssertionError("no free port although the count said there was one")


@attrs.frozen
class Match:
    """A fit: the resources (Mesos JSON) and host ports of the launch."""

    resources: tuple[Json, ...]
    host_ports: tuple[int, ...]


@attrs.frozen
class Rejection:
    """Why the offer was not used: every failing check, with human detail."""

    reasons: frozenset[NoOfferMatchReason]
    details: tuple[str, ...]
    #: resource name -> (needed, offered) for insufficient scalars
    shortfalls: Mapping[str, tuple[float, float]] = attrs.field(factory=dict, hash=False)


def constraint_fit(
    app: AppDefinition,
    offer: OfferView,
    placed: Mapping[str, Placed],
    operators: Mapping[str, ConstraintOperator],
) -> Fit:
    """All constraints of ``app`` on ``offer`` (AND); the first rejection explains."""
    for constraint in app.constraints:
        name = constraint.operator.upper()
        operator = operators.get(name)
        if operator is None:
            return Fit.no(f"no installed plugin provides constraint operator {name}")
        field_placed = placed.get(constraint.field) or Placed.empty(instances=app.instances)
        try:
            fit = operator.filter(offer, constraint.field, constraint.value, field_placed)
        except Exception as exc:  # a plugin bug: reject this offer, keep scheduling
            log.exception("constraint operator %s failed on %s", name, offer.hostname)
            return Fit.no(f"constraint operator {name} failed: {exc!r}")
        if not fit.ok:
            return fit
    return Fit.yes()


def _scalar_resources(
    pool: OfferPool, name: str, amount: float, roles: frozenset[str] | None
) -> list[Json]:
    out: list[Json] = []
    left = amount
    for entry in pool.scalars.get(name, ()):
        if left <= _EPSILON:
            break
        if (roles is not None and entry.reservation_role not in roles) or entry.amount <= 0:
            continue
        use = min(entry.amount, left)
        out.append(
            {"name": name, "type": "SCALAR", "scalar": {"value": round(use, 3)}, **entry.template}
        )
        left -= use
    return out


def match(
    app: AppDefinition,
    pool: OfferPool,
    placed: Mapping[str, Placed],
    operators: Mapping[str, ConstraintOperator],
    rng: random.Random,
) -> Match | Rejection:
    """Whether one more instance of ``app`` fits what is left of ``pool``."""
    reasons: set[NoOfferMatchReason] = set()
    details: list[str] = []
    shortfalls: dict[str, tuple[float, float]] = {}
    roles = frozenset(app.accepted_resource_roles) if app.accepted_resource_roles else None
    if pool.role != app.role:
        reasons.add(Reason.UNFULFILLED_ROLE)
        details.append(f"offer is for role {pool.role}, app needs role {app.role}")
    needs = {"cpus": app.cpus, "mem": app.mem, "disk": app.disk, "gpus": float(app.gpus)}
    for name, needed in needs.items():
        if needed <= 0:
            continue
        offered = pool.scalar(name, roles)
        if offered + _EPSILON < needed:
            reasons.add(_SCALAR_REASONS[name])
            shortfalls[name] = (needed, offered)
            details.append(f"needs {needed:g} {name}, offer has {offered:g}")
    host_ports: list[int] | None = []
    requests = port_requests(app)
    if requests:
        host_ports = assign_ports(requests, pool.port_ranges(roles), rng)
        if host_ports is None:
            reasons.add(Reason.INSUFFICIENT_PORTS)
            wanted = [p for p in requests if p] or f"{len(requests)} port(s)"
            details.append(f"needs ports {wanted}, offer has {pool.port_ranges(roles)}")
    if app.constraints:
        fit = constraint_fit(app, pool.view, placed, operators)
        if not fit.ok:
            reasons.add(fit.code or Reason.UNFULFILLED_CONSTRAINT)
            details.append(fit.reason)
    if reasons or host_ports is None:
        return Rejection(frozenset(reasons), tuple(details), shortfalls)
    resources: list[Json] = []
    for name, needed in needs.items():
        if needed > 0:
            resources.extend(_scalar_resources(pool, name, needed, roles))
    if host_ports:
        resources.extend(_port_resources(pool, host_ports, roles))
    return Match(tuple(resources), tuple(host_ports))


def _port_resources(
    pool: OfferPool, ports: Sequence[int], roles: frozenset[str] | None
) -> list[Json]:
    out: list[Json] = []
    for entry in pool.ports:
        if roles is not None and entry.reservation_role not in roles:
            continue
        mine = sorted(p for p in ports if any(b <= p <= e for b, e in entry.ranges))
        if mine:
            out.append(
                {
                    "name": "ports",
                    "type": "RANGES",
                    "ranges": {"range": [{"begin": p, "end": p} for p in mine]},
                    **entry.template,
                }
            )
    return out
