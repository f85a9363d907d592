"""Each operator's accept/reject semantics on single offers."""

from __future__ import annotations

import pytest

from marathon_constraints.operators import (
    Cluster,
    GroupBy,
    Is,
    Like,
    MaxPer,
    Unique,
    Unlike,
    operators,
)
from marathon_core.contracts.placement import (
    ConstraintOperator,
    Fit,
    NoOfferMatchReason,
    OfferView,
    Placed,
)


def agent(hostname: str = "host", **attributes: str) -> OfferView:
    return OfferView(hostname=hostname, agent_id=f"{hostname}-id", attributes=attributes)


def placed(*values: str | None, instances: int | None = None) -> Placed:
    return Placed.of(values, instances=len(values) if instances is None else instances)


def test_registry_names_and_protocol() -> None:
    ops = operators()
    assert sorted(ops) == ["CLUSTER", "GROUP_BY", "IS", "LIKE", "MAX_PER", "UNIQUE", "UNLIKE"]
    for op in ops.values():
        assert isinstance(op, ConstraintOperator)
    cacheable = {name for name, op in ops.items() if not op.needs_placed}
    assert cacheable == {"LIKE", "UNLIKE", "IS"}


def test_rejection_is_an_unfulfilled_constraint() -> None:
    fit = Unique().filter(agent("a"), "hostname", None, placed("a"))
    assert not fit.ok
    assert fit.code is NoOfferMatchReason.UNFULFILLED_CONSTRAINT
    assert "hostname=a" in fit.reason
    assert Unique().filter(agent("b"), "hostname", None, placed("a")) == Fit.yes()


# -- missing attribute: only UNLIKE accepts ------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UNIQUE", None),
        ("CLUSTER", None),
        ("CLUSTER", "x"),
        ("GROUP_BY", None),
        ("GROUP_BY", "2"),
        ("LIKE", "x.*"),
        ("MAX_PER", "3"),
        ("IS", "x"),
    ],
)
def test_missing_attribute_rejected(name: str, value: str | None) -> None:
    fit = operators()[name].filter(agent(), "rack", value, placed())
    assert not fit.ok
    assert "has no rack" in fit.reason


def test_missing_attribute_accepted_by_unlike() -> None:
    assert Unlike().filter(agent(), "rack", "r1", placed("r1")).ok


# -- UNIQUE --------------------------------------------------------------------------


def test_unique_on_attribute() -> None:
    op = Unique()
    assert op.filter(agent(rack="r1"), "rack", None, placed()).ok
    assert not op.filter(agent(rack="r1"), "rack", None, placed("r1")).ok
    assert op.filter(agent(rack="r2"), "rack", None, placed("r1", None)).ok


@pytest.mark.parametrize("field", ["hostname", "@hostname"])
def test_unique_on_hostname(field: str) -> None:
    assert not Unique().filter(agent("a1"), field, None, placed("a1")).ok
    assert Unique().filter(agent("a2"), field, None, placed("a1")).ok


# -- CLUSTER -------------------------------------------------------------------------


def test_cluster_with_value() -> None:
    op = Cluster()
    assert op.filter(agent(dc="dc1"), "dc", "dc1", placed()).ok
    assert not op.filter(agent(dc="dc2"), "dc", "dc1", placed()).ok
    # The value decides alone, whatever is placed.
    assert op.filter(agent(dc="dc1"), "dc", "dc1", placed("dc2")).ok


@pytest.mark.parametrize("value", [None, ""])
def test_cluster_without_value_pins_to_first(value: str | None) -> None:
    op = Cluster()
    assert op.filter(agent(dc="dc2"), "dc", value, placed()).ok
    assert op.filter(agent(dc="dc1"), "dc", value, placed("dc1", "dc1")).ok
    assert not op.filter(agent(dc="dc2"), "dc", value, placed("dc1")).ok
    # The first placed instance decides, as in Marathon.
    assert op.filter(agent(dc="dc2"), "dc", value, placed("dc2", "dc1")).ok
    # First instance lacks the attribute: nothing matches it.
    assert not op.filter(agent(dc="dc1"), "dc", value, placed(None)).ok


def test_cluster_on_hostname() -> None:
    assert Cluster().filter(agent("a"), "hostname", "a", placed()).ok
    assert not Cluster().filter(agent("b"), "hostname", None, placed("a")).ok


# -- GROUP_BY (Marathon 1.11 with a count) ---------------------------------------------


def rack(n: int) -> OfferView:
    return agent(rack_id=f"rack-{n}")


@pytest.mark.parametrize(
    ("offer", "count", "placements", "ok"),
    [
        # first placement
        (1, "2", [], True),
        # remainder may go to a group
        (1, "2", [1, 1], True),
        (1, "4", [1], True),
        # at most one extra per group, and only `remainder` groups get one
        (1, "2", [1, 1, 1], False),
        (1, "4", [1, 1], False),
        (2, "4", [1, 1, 2], False),
        # second group, final placement
        (2, "2", [1], True),
        (2, "2", [1, 1, 1, 2], True),
        # no more groups than asked for
        (3, "2", [1, 2], False),
        # count above instances: one per group, up to `count` groups
        (3, "6", [1, 2], True),
        (1, "6", [1, 2], False),
    ],
)
def test_group_by_count_five_instances(
    offer: int, count: str, placements: list[int], ok: bool
) -> None:
    values = [f"rack-{n}" for n in placements]
    fit = GroupBy().filter(rack(offer), "rack_id", count, placed(*values, instances=5))
    assert fit.ok is ok, fit.reason


def test_group_by_on_hostname() -> None:
    op = GroupBy()
    p = placed(instances=5)
    assert op.filter(agent("h1"), "@hostname", "3", p).ok
    p = p.add("h1")
    assert op.filter(agent("h2"), "@hostname", "3", p).ok
    assert op.filter(agent("h1"), "@hostname", "3", p).ok  # 5 // 3 = 1 per host, +1 on 2
    p = p.add("h2").add("h3")
    assert not op.filter(agent("h4"), "hostname", "3", p).ok


def test_group_by_counts_agents_lacking_the_field_as_a_group() -> None:
    # Marathon groups placed instances by Option[value]: "no value" is a group of its own.
    p = placed("r1", None, instances=4)
    assert not GroupBy().filter(agent(rack="r2"), "rack", "2", p).ok


# -- GROUP_BY without a count: classic rule -------------------------------------------


@pytest.mark.parametrize("value", [None, "0", "-3"])
def test_group_by_without_count_keeps_groups_level(value: str | None) -> None:
    op = GroupBy()
    assert op.filter(agent(rack="r1"), "rack", value, placed()).ok
    assert op.filter(agent(rack="r2"), "rack", value, placed("r1")).ok  # new value
    assert op.filter(agent(rack="r1"), "rack", value, placed("r1")).ok  # r1 is the smallest
    assert op.filter(agent(rack="r1"), "rack", value, placed("r1", "r2")).ok
    assert not op.filter(agent(rack="r1"), "rack", value, placed("r1", "r1", "r2")).ok
    assert op.filter(agent(rack="r2"), "rack", value, placed("r1", "r1", "r2")).ok


# -- LIKE / UNLIKE -------------------------------------------------------------------


def test_like_is_a_full_match() -> None:
    op = Like()
    assert op.filter(agent(zone="us-east-1a"), "zone", "us-east-1[a-c]", placed()).ok
    assert not op.filter(agent(zone="us-east-1d"), "zone", "us-east-1[a-c]", placed()).ok
    assert not op.filter(agent(zone="us-east-1ab"), "zone", "us-east-1[a-c]", placed()).ok
    assert not op.filter(agent(zone="xus-east-1a"), "zone", "us-east-1[a-c]", placed()).ok
    assert op.filter(agent("web-3"), "hostname", "web-[0-9]+", placed()).ok


def test_unlike_is_a_full_match() -> None:
    op = Unlike()
    assert not op.filter(agent(node_type="spot"), "node_type", "gpu|spot", placed()).ok
    assert op.filter(agent(node_type="spotty"), "node_type", "gpu|spot", placed()).ok
    assert op.filter(agent(node_type="cpu"), "node_type", "gpu|spot", placed()).ok


def test_like_unlike_with_empty_value_reject_present_values() -> None:
    # Marathon accepts "" at API time, then matches nothing at offer time.
    assert not Like().filter(agent(z=""), "z", "", placed()).ok
    assert not Unlike().filter(agent(z="a"), "z", "", placed()).ok
    assert Unlike().filter(agent(), "z", "", placed()).ok


def test_like_compares_stringified_scalars() -> None:
    offer = OfferView.from_mesos(
        {
            "hostname": "h",
            "agent_id": {"value": "a"},
            "attributes": [{"name": "gen", "type": "SCALAR", "scalar": {"value": 2.50}}],
        }
    )
    assert Like().filter(offer, "gen", r"2\.5", placed()).ok
    assert not Like().filter(offer, "gen", r"2\.50", placed()).ok


# -- MAX_PER -------------------------------------------------------------------------


def test_max_per() -> None:
    op = MaxPer()
    assert op.filter(agent(rack="r1"), "rack", "2", placed("r1", "r2")).ok
    assert not op.filter(agent(rack="r1"), "rack", "2", placed("r1", "r1")).ok
    assert op.filter(agent(rack="r2"), "rack", "2", placed("r1", "r1")).ok
    assert not op.filter(agent(rack="r1"), "rack", "0", placed()).ok
    assert not op.filter(agent("h"), "hostname", "1", placed("h")).ok


def test_max_per_with_unvalidated_value_rejects_without_raising() -> None:
    fit = MaxPer().filter(agent(rack="r1"), "rack", "two", placed())
    assert not fit.ok
    assert "'two'" in fit.reason


# -- IS ------------------------------------------------------------------------------


def test_is_text() -> None:
    assert Is().filter(agent(os="linux"), "os", "linux", placed()).ok
    assert not Is().filter(agent(os="linux2"), "os", "linux", placed()).ok
    assert not Is().filter(agent(os="Linux"), "os", "linux", placed()).ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0.8", True),
        ("0.80", True),
        ("0.8000", True),
        ("00.8", True),
        (".8", False),
        ("0.81", False),
    ],
)
def test_is_scalar_formatting(value: str, ok: bool) -> None:
    offer = OfferView.from_mesos(
        {
            "hostname": "h",
            "agent_id": {"value": "a"},
            "attributes": [{"name": "ratio", "type": "SCALAR", "scalar": {"value": 0.8000}}],
        }
    )
    assert Is().filter(offer, "ratio", value, placed()).ok is ok


def test_is_scalar_rounds_like_marathon() -> None:
    assert Is().filter(agent(v="1"), "v", "1.0005", placed()).ok
    assert Is().filter(agent(v="1.101"), "v", "1.1005", placed()).ok
    assert Is().filter(agent(v="3"), "v", "3.000", placed()).ok


def test_is_without_value_matches_only_empty_text() -> None:
    assert Is().filter(agent(os=""), "os", None, placed()).ok
    assert not Is().filter(agent(os="linux"), "os", None, placed()).ok


# -- region / zone -------------------------------------------------------------------


def test_fault_domain_fields() -> None:
    offer = OfferView(hostname="h", agent_id="a", region="eu", zone="eu-1")
    assert Is().filter(offer, "@region", "eu", placed()).ok
    assert Like().filter(offer, "@zone", "eu-[0-9]", placed()).ok
    assert not Unique().filter(offer, "@zone", None, placed("eu-1")).ok
    bare = OfferView(hostname="h", agent_id="a", attributes={"region": "eu"})
    assert not Is().filter(bare, "@region", "eu", placed()).ok  # not an attribute read
    assert Is().filter(bare, "region", "eu", placed()).ok
