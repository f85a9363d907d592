"""Agent resources and attributes: Mesos's text syntax, arithmetic, and v1 JSON.

Resources here are unreserved (role ``*``): scalars (``cpus``, ``mem``, ``disk``,
``gpus``), ranges (``ports``) and sets. Arithmetic is what the allocator needs:
add, subtract, containment (offer filters and "task fits in the offer"). Scalars
keep three decimals, as Mesos does, so that sums do not drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "DEFAULT_RESOURCES",
    "ResourceError",
    "Resources",
    "attributes_to_json",
    "parse_attributes",
]

#: What an agent offers when ``--agent-resources`` is not given.
DEFAULT_RESOURCES = "cpus:2;mem:2048;disk:10000;ports:[31000-32000]"

#: Preferred order of names in JSON, as Mesos lists them.
_ORDER = {"cpus": 0, "gpus": 1, "mem": 2, "disk": 3, "ports": 4}

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class ResourceError(ValueError):
    """A resource or attribute string or JSON value that cannot be understood."""


def _fixed(value: float) -> float:
    return round(value * 1000) / 1000


Range = tuple[int, int]


def _normalize(ranges: Iterable[Range]) -> tuple[Range, ...]:
    merged: list[list[int]] = []
    for begin, end in sorted(ranges):
        if begin > end:
            raise ResourceError(f"range [{begin}-{end}] has begin > end")
        if merged and begin <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple((b, e) for b, e in merged)


def _subtract_ranges(left: Sequence[Range], right: Sequence[Range]) -> tuple[Range, ...]:
    result: list[Range] = []
    for begin, end in left:
        pieces = [(begin, end)]
        for rb, re_ in right:
            next_pieces: list[Range] = []
            for pb, pe in pieces:
                if re_ < pb or rb > pe:
                    next_pieces.append((pb, pe))
                    continue
                if rb > pb:
                    next_pieces.append((pb, rb - 1))
                if re_ < pe:
                    next_pieces.append((re_ + 1, pe))
            pieces = next_pieces
        result.extend(pieces)
    return _normalize(result)


def _ranges_contain(outer: Sequence[Range], inner: Sequence[Range]) -> bool:
    return all(any(ob <= b and e <= oe for ob, oe in outer) for b, e in inner)


@attrs.frozen
class Resources:
    """An immutable bag of unreserved resources."""

    scalars: Mapping[str, float] = attrs.field(factory=dict)
    ranges: Mapping[str, tuple[Range, ...]] = attrs.field(factory=dict)
    sets: Mapping[str, frozenset[str]] = attrs.field(factory=dict)

    # -- construction ------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Resources:
        """Mesos's ``--resources`` syntax: ``cpus:4;mem:4096;ports:[31000-32000]``."""
        text = text.strip()
        if text.startswith("["):
            import json

            return cls.from_json(json.loads(text))
        scalars: dict[str, float] = {}
        ranges: dict[str, tuple[Range, ...]] = {}
        sets: dict[str, frozenset[str]] = {}
        for item in filter(None, (part.strip() for part in text.split(";"))):
            name, sep, value = item.partition(":")
            name, value = name.strip(), value.strip()
            if not sep or not name or not value:
                raise ResourceError(f"bad resource {item!r}: expected name:value")
            if "(" in name:
                base, _, role = name.partition("(")
                if role.rstrip(")") != "*":
                    raise ResourceError(
                        f"bad resource {item!r}: static reservations are not supported"
                    )
                name = base
            if value.startswith("["):
                ranges[name] = _normalize(_parse_ranges(value, item))
            elif value.startswith("{"):
                sets[name] = frozenset(v.strip() for v in value.strip("{}").split(",") if v.strip())
            else:
                try:
                    scalars[name] = _fixed(float(value))
                except ValueError:
                    raise ResourceError(f"bad resource {item!r}: not a number") from None
        return cls(scalars, ranges, sets)

    @classmethod
    def from_json(cls, resources: Iterable[Mapping[str, Any]]) -> Resources:
        """A v1 ``Resource`` list (reservation and allocation fields are ignored)."""
        total = cls()
        for res in resources:
            kind = res.get("type")
            name = res.get("name")
            if not isinstance(name, str) or not name:
                raise ResourceError("resource without a name")
            if kind == "SCALAR":
                value = float((res.get("scalar") or {}).get("value", 0))
                if value < 0:
                    raise ResourceError(f"negative scalar resource {name}")
                part = cls(scalars={name: _fixed(value)})
            elif kind == "RANGES":
                items = (res.get("ranges") or {}).get("range") or []
                part = cls(
                    ranges={name: _normalize((int(r["begin"]), int(r["end"])) for r in items)}
                )
            elif kind == "SET":
                part = cls(sets={name: frozenset((res.get("set") or {}).get("item") or [])})
            else:
                raise ResourceError(f"resource {name} has unsupported type {kind!r}")
            total = total + part
        return total

    # -- arithmetic ----------------------------------------------------------

    def __add__(self, other: Resources) -> Resources:
        scalars = dict(self.scalars)
        for name, value in other.scalars.items():
            scalars[name] = _fixed(scalars.get(name, 0.0) + value)
        ranges = dict(self.ranges)
        for name, items in other.ranges.items():
            ranges[name] = _normalize([*ranges.get(name, ()), *items])
        sets = dict(self.sets)
        for name, members in other.sets.items():
            sets[name] = sets.get(name, frozenset()) | members
        return Resources(scalars, ranges, sets)

    def __sub__(self, other: Resources) -> Resources:
        scalars = dict(self.scalars)
        for name, value in other.scalars.items():
            scalars[name] = max(0.0, _fixed(scalars.get(name, 0.0) - value))
        ranges = dict(self.ranges)
        for name, items in other.ranges.items():
            ranges[name] = _subtract_ranges(ranges.get(name, ()), items)
        sets = dict(self.sets)
        for name, members in other.sets.items():
            sets[name] = sets.get(name, frozenset()) - members
        return Resources(scalars, ranges, sets).pruned()

    def pruned(self) -> Resources:
        """Without empty entries."""
        return Resources(
            {k: v for k, v in self.scalars.items() if v > 0},
            {k: v for k, v in self.ranges.items() if v},
            {k: v for k, v in self.sets.items() if v},
        )

    def contains(self, other: Resources) -> bool:
        """True if ``other`` is a subset of these resources."""
        for name, value in other.scalars.items():
            if value > self.scalars.get(name, 0.0) + 1e-9:
                return False
        for name, items in other.ranges.items():
            if not _ranges_contain(self.ranges.get(name, ()), items):
                return False
        return all(items <= self.sets.get(name, frozenset()) for name, items in other.sets.items())

    def is_empty(self) -> bool:
        return not (self.pruned().scalars or self.pruned().ranges or self.pruned().sets)

    def scalar(self, name: str) -> float:
        return self.scalars.get(name, 0.0)

    def ports(self) -> list[int]:
        """Every port in the ``ports`` ranges, in order."""
        return [p for b, e in self.ranges.get("ports", ()) for p in range(b, e + 1)]

    # -- output ----------------------------------------------------------------

    def to_json(
        self, *, allocation_role: str | None = None, with_role: bool = True
    ) -> list[dict[str, Any]]:
        """As a v1 ``Resource`` list, e.g. for an offer to a framework of ``allocation_role``."""
        out: list[tuple[int, str, dict[str, Any]]] = []
        for name, value in self.scalars.items():
            out.append(
                (
                    _ORDER.get(name, 9),
                    name,
                    {"name": name, "type": "SCALAR", "scalar": {"value": value}},
                )
            )
        for name, items in self.ranges.items():
            rng = [{"begin": b, "end": e} for b, e in items]
            out.append(
                (
                    _ORDER.get(name, 9),
                    name,
                    {"name": name, "type": "RANGES", "ranges": {"range": rng}},
                )
            )
        for name, set_items in self.sets.items():
            out.append(
                (
                    _ORDER.get(name, 9),
                    name,
                    {"name": name, "type": "SET", "set": {"item": sorted(set_items)}},
                )
            )
        result = []
        for _, _, res in sorted(out, key=lambda t: (t[0], t[1])):
            if with_role:
                res["role"] = "*"
            if allocation_role is not None:
                res["allocation_info"] = {"role": allocation_role}
            result.append(res)
        return result

    def to_state(self) -> dict[str, Any]:
        """The map form of ``/master/state``: ``{"cpus": 4, "ports": "[31000-32000]"}``."""
        state: dict[str, Any] = {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
        state.update(self.scalars)
        for name, items in self.ranges.items():
            state[name] = "[" + ", ".join(f"{b}-{e}" for b, e in items) + "]"
        for name, set_items in self.sets.items():
            state[name] = "{" + ", ".join(sorted(set_items)) + "}"
        return state

    def __str__(self) -> str:
        parts = [f"{k}:{v:g}" for k, v in self.scalars.items()]
        parts += [
            f"{k}:[" + ",".join(f"{b}-{e}" for b, e in v) + "]" for k, v in self.ranges.items()
        ]
        parts += [f"{k}:{{" + ",".join(sorted(v)) + "}" for k, v in self.sets.items()]
        return ";".join(parts)


def _parse_ranges(value: str, item: str) -> list[Range]:
    inner = value.strip()
    if not inner.endswith("]"):
        raise ResourceError(f"bad resource {item!r}: unterminated range list")
    result = []
    for part in filter(None, (p.strip() for p in inner[1:-1].split(","))):
        match = _RANGE.match(part)
        if not match:
            raise ResourceError(f"bad resource {item!r}: {part!r} is not begin-end")
        result.append((int(match.group(1)), int(match.group(2))))
    return result


def parse_attributes(text: str) -> list[dict[str, Any]]:
    """Mesos's ``--attributes`` syntax ``rack:r1;zone:a`` as v1 ``Attribute`` JSON.

    As in Mesos, a value that is a number is a SCALAR, ``[a-b]`` is RANGES, ``{x,y}``
    is a SET, and anything else is TEXT.
    """
    result: list[dict[str, Any]] = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, sep, value = item.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ResourceError(f"bad attribute {item!r}: expected name:value")
        if _NUMBER.match(value):
            result.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
        elif value.startswith("["):
            rng = [{"begin": b, "end": e} for b, e in _normalize(_parse_ranges(value, item))]
            result.append({"name": name, "type": "RANGES", "ranges": {"range": rng}})
        elif value.startswith("{"):
            items = [v.strip() for v in value.strip("{}").split(",") if v.strip()]
            result.append({"name": name, "type": "SET", "set": {"item": items}})
        else:
            result.append({"name": name, "type": "TEXT", "text": {"value": value}})
    return result


def attributes_to_json(attributes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The map form of attributes in ``/master/state``: ``{"rack": "r1", "level": 2}``."""
    out: dict[str, Any] = {}
    for attr in attributes:
        kind = attr.get("type")
        if kind == "TEXT":
            out[attr["name"]] = attr["text"]["value"]
        elif kind == "SCALAR":
            out[attr["name"]] = attr["scalar"]["value"]
        elif kind == "RANGES":
            out[attr["name"]] = (
                "[" + ", ".join(f"{r['begin']}-{r['end']}" for r in attr["ranges"]["range"]) + "]"
            )
        elif kind == "SET":
            out[attr["name"]] = "{" + ", ".join(attr["set"]["item"]) + "}"
    return out
