"""Mesos's resource and attribute syntax, and the arithmetic the allocator relies on."""

from __future__ import annotations

import pytest

from marathon_mesos_local.resources import ResourceError, Resources, parse_attributes


def test_parse_mesos_syntax() -> None:
    r = Resources.parse("cpus:4;mem:4096;disk:10000;ports:[31000-31005,32000-32000]")
    assert r.scalars == {"cpus": 4.0, "mem": 4096.0, "disk": 10000.0}
    assert r.ranges == {"ports": ((31000, 31005), (32000, 32000))}
    assert r.ports()[:2] == [31000, 31001]
    assert Resources.parse("cpus(*):2").scalar("cpus") == 2.0
    assert Resources.parse("gpus:{a,b}").sets == {"gpus": frozenset({"a", "b"})}


@pytest.mark.parametrize("bad", ["cpus", "cpus:x", "ports:[1-]", "cpus(web):2", "ports:[5-1]"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ResourceError):
        Resources.parse(bad)


def test_arithmetic_and_containment() -> None:
    total = Resources.parse("cpus:1;mem:100;ports:[10-20]")
    used = Resources.parse("cpus:0.3;mem:50;ports:[12-13]")
    free = total - used
    assert free.scalars == {"cpus": 0.7, "mem": 50.0}
    assert free.ranges == {"ports": ((10, 11), (14, 20))}
    assert free + used == total
    assert total.contains(used)
    assert not free.contains(used)
    assert not used.contains(Resources.parse("cpus:0.31"))
    assert (Resources.parse("cpus:0.1") + Resources.parse("cpus:0.2")).scalar("cpus") == 0.3


def test_json_round_trip() -> None:
    r = Resources.parse("cpus:2;mem:64;ports:[31000-31001]")
    as_json = r.to_json(allocation_role="apps")
    assert as_json[0] == {
        "name": "cpus",
        "type": "SCALAR",
        "scalar": {"value": 2.0},
        "role": "*",
        "allocation_info": {"role": "apps"},
    }
    assert Resources.from_json(as_json) == r
    assert r.to_state()["ports"] == "[31000-31001]"


def test_attributes_follow_mesos_typing() -> None:
    assert parse_attributes("rack:r1;level:2;ids:[1-3];tags:{x,y}") == [
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
        {"name": "level", "type": "SCALAR", "scalar": {"value": 2.0}},
        {"name": "ids", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 3}]}},
        {"name": "tags", "type": "SET", "set": {"item": ["x", "y"]}},
    ]
    with pytest.raises(ResourceError):
        parse_attributes("nocolon")
