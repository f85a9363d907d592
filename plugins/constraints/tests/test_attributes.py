"""How operators see Mesos attributes: Marathon's stringification and field readers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marathon_core.contracts.placement import (
    OfferView,
    Placed,
    format_attribute,
    format_ranges,
    format_scalar,
    format_set,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.8000, "0.8"),
        (1.0005, "1"),  # binary 1.000499999... rounds down
        (1.00051, "1.001"),
        (1.1005, "1.101"),  # binary 1.100500000...03 rounds up
        (0.0625, "0.062"),  # an exact tie rounds half-even
        (0.1875, "0.188"),
        (2.0, "2"),
        (3, "3"),
        (10.25, "10.25"),
        (0.0, "0"),
        (1e20, "100000000000000000000"),
        (123456.789, "123456.789"),
    ],
)
def test_format_scalar(value: float, text: str) -> None:
    assert format_scalar(value) == text


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_format_scalar_shape(value: float) -> None:
    text = format_scalar(value)
    assert "e" not in text and "," not in text
    whole, _, decimals = text.lstrip("-").partition(".")
    assert whole.isdigit()
    assert len(decimals) <= 3 and not decimals.endswith("0")
    assert abs(float(text) - value) <= 0.0005 + 1e-9 * abs(value)


def test_format_ranges_and_set() -> None:
    assert format_ranges([(31000, 32000), (1, 5)]) == "[1-5,31000-32000]"
    assert format_ranges([]) == "[]"
    assert format_set(["b", "a", "c"]) == "{a,b,c}"


ATTRIBUTES: list[tuple[dict[str, Any], str]] = [
    ({"type": "TEXT", "text": {"value": "r1"}}, "r1"),
    ({"type": "SCALAR", "scalar": {"value": 0.8000}}, "0.8"),
    ({"type": "SCALAR", "scalar": {"value": 1.0005}}, "1"),
    (
        {"type": "RANGES", "ranges": {"range": [{"begin": 10, "end": 20}, {"begin": 1, "end": 2}]}},
        "[1-2,10-20]",
    ),
    ({"type": "RANGES", "ranges": {"range": [{"begin": "3", "end": "4"}]}}, "[3-4]"),
    ({"type": "SET", "set": {"item": ["ssd", "gpu", "nvme"]}}, "{gpu,nvme,ssd}"),
]


@pytest.mark.parametrize(("attribute", "text"), ATTRIBUTES)
def test_format_attribute(attribute: dict[str, Any], text: str) -> None:
    assert format_attribute({"name": "x", **attribute}) == text


def test_format_attribute_unknown_type() -> None:
    with pytest.raises(ValueError, match="BLOB"):
        format_attribute({"name": "x", "type": "BLOB"})


def test_offer_view_from_mesos_offer() -> None:
    offer = OfferView.from_mesos(
        {
            "id": {"value": "offer-1"},
            "agent_id": {"value": "agent-7"},
            "hostname": "a1.example",
            "domain": {
                "fault_domain": {"region": {"name": "eu-west"}, "zone": {"name": "eu-west-1"}}
            },
            "attributes": [
                {"name": "rack_id", "type": "TEXT", "text": {"value": "r1"}},
                {"name": "rack_id", "type": "TEXT", "text": {"value": "ignored"}},
                {"name": "cap", "type": "SCALAR", "scalar": {"value": 4.0}},
            ],
        }
    )
    assert offer.agent_id == "agent-7"
    assert offer.attributes == {"rack_id": "r1", "cap": "4"}
    assert offer.attribute("hostname") == offer.attribute("@hostname") == "a1.example"
    assert offer.attribute("@region") == "eu-west"
    assert offer.attribute("@zone") == "eu-west-1"
    assert offer.attribute("rack_id") == "r1"
    assert offer.attribute("cap") == "4"
    assert offer.attribute("missing") is None


def test_offer_view_from_agent_info_without_domain() -> None:
    view = OfferView.from_mesos({"id": {"value": "agent-1"}, "hostname": "h"})
    assert view.agent_id == "agent-1"
    assert view.attribute("@region") is None
    assert view.attribute("@zone") is None
    assert view.attribute("region") is None


def test_offer_view_attributes_are_read_only() -> None:
    source = {"rack": "r1"}
    view = OfferView(hostname="h", agent_id="a", attributes=source)
    source["rack"] = "r2"
    assert view.attribute("rack") == "r1"
    with pytest.raises(TypeError):
        view.attributes["rack"] = "r3"  # type: ignore[index]


def test_views_are_hashable_values() -> None:
    one = OfferView(hostname="h", agent_id="a", attributes={"rack": "r1", "os": "linux"})
    same = OfferView(hostname="h", agent_id="a", attributes={"os": "linux", "rack": "r1"})
    other = OfferView(hostname="h", agent_id="a", attributes={"rack": "r2", "os": "linux"})
    assert one == same and hash(one) == hash(same)
    assert one != other
    assert len({one, same, other}) == 2
    assert Placed.of(["a", "b"], instances=2) == Placed.of(["a", "b"], instances=2)
    assert hash(Placed.of(["a"], instances=2)) == hash(Placed.empty(instances=2).add("a"))


def test_placed_counts() -> None:
    placed = Placed.of(["r1", "r2", None, "r1"], instances=6)
    assert placed.total == 4
    assert placed.count("r1") == 2 and placed.count(None) == 1 and placed.count("r9") == 0
    assert placed.groups == 3
    assert placed.first == "r1"
    more = placed.add("r3")
    assert (more.total, more.groups, more.count("r3"), more.first) == (5, 4, 1, "r1")
    assert placed.total == 4  # unchanged
    assert Placed.empty(instances=3).add("x").first == "x"
    assert Placed.of([], instances=1) == Placed.empty(instances=1)
