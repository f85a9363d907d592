"""The "Constraint scenario for app-constraints.json" of the Marathon examples, row by row."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from marathon_constraints.operators import operators
from marathon_core.contracts.placement import Fit, OfferView, Placed

# examples/app-constraints.json: 6 instances, every operator.
INSTANCES = 6
CONSTRAINTS: list[list[str]] = [
    ["hostname", "UNIQUE"],
    ["rack_id", "GROUP_BY", "3"],
    ["rack_id", "MAX_PER", "2"],
    ["zone", "LIKE", "us-east-1[a-c]"],
    ["node_type", "UNLIKE", "gpu|spot"],
    ["os", "IS", "linux"],
    ["datacenter", "CLUSTER", "dc1"],
]

PLACED_COMMON = {"zone": "us-east-1a", "os": "linux", "datacenter": "dc1"}
PLACED = [
    OfferView(hostname="a1", agent_id="s1", attributes={"rack_id": "r1", **PLACED_COMMON}),
    OfferView(hostname="a2", agent_id="s2", attributes={"rack_id": "r2", **PLACED_COMMON}),
]

OFFER_DEFAULTS = {"os": "linux", "datacenter": "dc1", "zone": "us-east-1b"}


def offer(hostname: str, *, drop: Sequence[str] = (), **changes: str) -> OfferView:
    attributes = {**OFFER_DEFAULTS, **changes}
    for name in drop:
        del attributes[name]
    return OfferView(hostname=hostname, agent_id=f"{hostname}-id", attributes=attributes)


def verdicts(candidate: OfferView) -> dict[str, Fit]:
    ops = operators()
    result = {}
    for field, op, *rest in CONSTRAINTS:
        value = rest[0] if rest else None
        placed = Placed.of((a.attribute(field) for a in PLACED), instances=INSTANCES)
        result[f"{field} {op}"] = ops[op].filter(candidate, field, value, placed)
    return result


ROWS = [
    # (offer, accepted, the constraint that rejects)
    (offer("a1", rack_id="r3"), False, "hostname UNIQUE"),
    (offer("a3", rack_id="r1"), True, None),  # 1.11 GROUP_BY: up to 6/3 = 2 per rack
    (offer("a4", rack_id="r3"), True, None),
    (offer("a5", rack_id="r3", zone="us-east-1d"), False, "zone LIKE"),
    (offer("a6", rack_id="r3", node_type="spot"), False, "node_type UNLIKE"),
    (offer("a7", rack_id="r3"), True, None),  # no node_type: UNLIKE accepts
    (offer("a8", rack_id="r3", drop=["os"]), False, "os IS"),
    (offer("a9", rack_id="r3", datacenter="dc2"), False, "datacenter CLUSTER"),
]


@pytest.mark.parametrize(
    ("candidate", "accepted", "culprit"), ROWS, ids=[row[0].hostname for row in ROWS]
)
def test_row(candidate: OfferView, accepted: bool, culprit: str | None) -> None:
    results = verdicts(candidate)
    assert all(fit.ok for fit in results.values()) is accepted
    rejected = {name for name, fit in results.items() if not fit.ok}
    assert rejected == ({culprit} if culprit else set())


def test_a3_classic_group_by_would_reject() -> None:
    # Documented difference: with <= 1.10 semantics r1 (an existing group) is refused
    # while only 2 of 3 groups are in use. 1.11's count-based spread accepts it.
    placed = Placed.of(["r1", "r2"], instances=INSTANCES)
    assert operators()["GROUP_BY"].filter(offer("a3", rack_id="r1"), "rack_id", "3", placed).ok


def test_rounds_see_tentative_placements() -> None:
    """Placing greedily in one round fills r3 and the racks up to MAX_PER, then stops."""
    ops = operators()
    placed = {
        field: Placed.of((a.attribute(field) for a in PLACED), instances=INSTANCES)
        for field, *_ in CONSTRAINTS
    }
    candidates = [offer(f"b{i}", rack_id=f"r{1 + i % 4}") for i in range(12)]
    accepted = []
    for candidate in candidates:
        if all(
            ops[op].filter(candidate, field, rest[0] if rest else None, placed[field]).ok
            for field, op, *rest in CONSTRAINTS
        ):
            accepted.append(candidate)
            placed = {f: p.add(candidate.attribute(f)) for f, p in placed.items()}
    racks = [c.attributes["rack_id"] for c in accepted]
    # r1 and r2 each take one more (2 per rack), r3 takes 2, r4 would be a 4th group.
    assert sorted(racks) == ["r1", "r2", "r3", "r3"]
    assert placed["rack_id"].total == INSTANCES
