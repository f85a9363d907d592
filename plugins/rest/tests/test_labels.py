from __future__ import annotations

import pytest

from marathon_core.errors import InvalidArgumentError
from marathon_rest.labels import parse_label_selector

LABELS = {"tier": "web", "team": "a", "dotted.key": "x,y"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("tier", True),
        ("missing", False),
        ("tier==web", True),
        ("tier==db", False),
        ("tier!=db", True),
        ("missing!=db", False),  # != requires the label to exist
        ("tier in (db, web)", True),
        ("tier notin (db,web)", False),
        ("missing notin (a)", False),
        ("tier==web,team==a", True),
        ("tier==web, team==b", False),
        ("dotted.key==x\\,y", True),
    ],
)
def test_selectors(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector)(LABELS) is matches


@pytest.mark.parametrize("selector", ["", "tier===web", "tier in web", "a b", "tier==(x)", ","])
def test_garbage_is_a_422_naming_the_selector(selector: str) -> None:
    with pytest.raises(InvalidArgumentError, match="Can not parse label selector"):
        parse_label_selector(selector)
