"""Scale-down: GROUP_BY decides which instances to kill so groups stay even."""

from __future__ import annotations

import pytest

from marathon_constraints.operators import select_instances_to_kill

RACK = {"i1": "r1", "i2": "r1", "i3": "r1", "i4": "r2", "i5": "r3"}


def test_kills_from_the_largest_group() -> None:
    assert select_instances_to_kill(list(RACK), 2, [RACK.__getitem__]) == ["i1", "i2"]


def test_then_spreads_the_kills() -> None:
    chosen = select_instances_to_kill(list(RACK), 3, [RACK.__getitem__])
    assert chosen[:2] == ["i1", "i2"]
    assert RACK[chosen[2]] in {"r1", "r2", "r3"}


def test_without_group_by_selects_nothing() -> None:
    assert select_instances_to_kill(list(RACK), 2, []) == []


def test_all_or_none() -> None:
    assert select_instances_to_kill(list(RACK), 5, [RACK.__getitem__]) == list(RACK)
    assert select_instances_to_kill(list(RACK), 0, [RACK.__getitem__]) == []
    with pytest.raises(ValueError):
        select_instances_to_kill(list(RACK), 6, [RACK.__getitem__])


def test_two_fields() -> None:
    zone = {"i1": "z1", "i2": "z2", "i3": "z1", "i4": "z1", "i5": "z2"}
    chosen = select_instances_to_kill(list(RACK), 1, [RACK.__getitem__, zone.__getitem__])
    # r1 is the largest rack; of its instances, one in z1 also evens the zones (3 vs 2).
    assert chosen == ["i1"]
