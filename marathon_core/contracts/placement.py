"""The placement-constraint operator protocol that constraint plugins implement.

An operator answers two questions about one constraint ``[field, OPERATOR, value]``:
at API time whether the value is acceptable (:meth:`ConstraintOperator.validate`), and
at offer time whether an offer fits given the instances already placed
(:meth:`ConstraintOperator.filter`). "Does not fit" is a :class:`Fit` result, never an
exception; an exception from ``filter`` is a plugin bug.

The values an operator sees are plain data built by the core:

* :class:`OfferView` -- the agent behind an offer (hostname, agent id, fault domain and
  attributes, stringified the way Marathon does it). The same view describes the agent
  of an instance that is already placed, so offers and placements are read alike.
* :class:`Placed` -- for one app and one constraint field, how many of the app's
  instances sit on each value of that field, including instances tentatively placed
  earlier in the same offer round.

Nothing here does I/O or blocks; everything is synchronous and pure.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import attrs

__all__ = [
    "HOSTNAME_FIELDS",
    "REASON_FUNNEL",
    "REGION_FIELD",
    "ZONE_FIELD",
    "ConstraintOperator",
    "ConstraintValidationError",
    "Fit",
    "NoOfferMatchReason",
    "OfferView",
    "Placed",
    "format_attribute",
    "format_ranges",
    "format_scalar",
    "format_set",
    "primary_reason",
]


# ---------------------------------------------------------------------------------------
# Verdicts and reasons


class NoOfferMatchReason(enum.StrEnum):
    """Why an offer was not used for an instance; the values appear in ``/v2/queue``.

    The names and spellings are Marathon's. Members are declared in Marathon's funnel
    order: when several reasons apply, the first in this order is reported.
    """

    UNFULFILLED_ROLE = "UnfulfilledRole"
    UNFULFILLED_CONSTRAINT = "UnfulfilledConstraint"
    NO_CORRESPONDING_RESERVATION_FOUND = "NoCorrespondingReservationFound"
    AGENT_MAINTENANCE = "AgentMaintenance"
    INSUFFICIENT_CPUS = "InsufficientCpus"
    INSUFFICIENT_MEMORY = "InsufficientMemory"
    INSUFFICIENT_DISK = "InsufficientDisk"
    INSUFFICIENT_GPUS = "InsufficientGpus"
    INSUFFICIENT_PORTS = "InsufficientPorts"
    DECLINED_SCARCE_RESOURCES = "DeclinedScarceResources"


#: All reasons, most important first (Marathon's ``reasonFunnel``).
REASON_FUNNEL: tuple[NoOfferMatchReason, ...] = tuple(NoOfferMatchReason)

_FUNNEL_INDEX = {reason: i for i, reason in enumerate(REASON_FUNNEL)}


def primary_reason(reasons: Iterable[NoOfferMatchReason]) -> NoOfferMatchReason | None:
    """The one reason to report for an unmatched offer, or None when there is none."""
    return min(reasons, key=_FUNNEL_INDEX.__getitem__, default=None)


class ConstraintValidationError(Exception):
    """The constraint's value is unacceptable; ``message`` is shown to the user (422)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class Fit:
    """The verdict of one operator on one offer.

    ``reason`` is the human detail of a rejection (logs, ``lastUnusedOffers``);
    ``code`` is what ``/v2/queue`` counts. Constraint operators reject with the default
    code, :attr:`NoOfferMatchReason.UNFULFILLED_CONSTRAINT`.
    """

    ok: bool
    reason: str = ""
    code: NoOfferMatchReason | None = None

    @classmethod
    def yes(cls) -> Fit:
        return _YES

    @classmethod
    def no(
        cls,
        reason: str,
        *,
        code: NoOfferMatchReason = NoOfferMatchReason.UNFULFILLED_CONSTRAINT,
    ) -> Fit:
        return cls(False, reason, code)


_YES = Fit(True)


# ---------------------------------------------------------------------------------------
# Attribute stringification (how Marathon compares Mesos attribute values)

_THOUSANDTH = Decimal("0.001")


def format_scalar(value: float) -> str:
    """A Mesos SCALAR as Marathon prints it: at most 3 decimals, half-even, no trailing zeros.

    The rounding applies to the exact binary value of the float (as Java's
    ``DecimalFormat("0.###")`` does), so ``1.0005`` gives ``"1"`` and ``1.1005`` gives
    ``"1.101"``; ``0.8000`` gives ``"0.8"``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    text = format(Decimal(value).quantize(_THOUSANDTH, rounding=ROUND_HALF_EVEN), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_ranges(ranges: Iterable[tuple[int, int]]) -> str:
    """A Mesos RANGES value as ``[b-e,b-e]``, sorted by begin."""
    parts = sorted(ranges, key=lambda r: r[0])
    return "[" + ",".join(f"{begin}-{end}" for begin, end in parts) + "]"


def format_set(items: Iterable[str]) -> str:
    """A Mesos SET value as ``{a,b}``, sorted."""
    return "{" + ",".join(sorted(items)) + "}"


def format_attribute(attribute: Mapping[str, Any]) -> str:
    """Stringify one Mesos v1 JSON ``Attribute`` (``{"name", "type", "text"|"scalar"|...}``)."""
    kind = attribute.get("type")
    if kind == "TEXT":
        return str(attribute["text"]["value"])
    if kind == "SCALAR":
        return format_scalar(float(attribute["scalar"]["value"]))
    if kind == "RANGES":
        ranges = attribute.get("ranges", {}).get("range", [])
        return format_ranges((int(r["begin"]), int(r["end"])) for r in ranges)
    if kind == "SET":
        return format_set(str(item) for item in attribute.get("set", {}).get("item", []))
    raise ValueError(f"unknown Mesos attribute type {kind!r}")


# ---------------------------------------------------------------------------------------
# What an operator looks at

#: Fields that read the agent's hostname instead of an attribute.
HOSTNAME_FIELDS = frozenset({"hostname", "@hostname"})
#: Field that reads the agent's fault-domain region.
REGION_FIELD = "@region"
#: Field that reads the agent's fault-domain zone.
ZONE_FIELD = "@zone"


_K = TypeVar("_K")
_V = TypeVar("_V")


class _FrozenMap(Mapping[_K, _V]):
    """A read-only, hashable mapping, so views can be compared and used as cache keys."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[_K, _V]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: _K) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)


def _frozen_str_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return value if isinstance(value, _FrozenMap) else _FrozenMap(value)


@attrs.frozen
class OfferView:
    """The agent behind an offer (or behind an already placed instance), as operators see it.

    ``attributes`` holds the agent's Mesos attributes already stringified
    (:func:`format_attribute`); build from a Mesos v1 JSON offer with :meth:`from_mesos`.
    Views are immutable and hashable: equal views get equal verdicts from operators
    whose ``needs_placed`` is False.
    """

    hostname: str
    agent_id: str
    attributes: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_str_map)
    region: str | None = None
    zone: str | None = None

    def attribute(self, field: str) -> str | None:
        """The value of constraint field ``field`` on this agent, or None when it has none.

        ``hostname``/``@hostname`` read the hostname, ``@region``/``@zone`` the fault
        domain, anything else the Mesos attribute of that name.
        """
        if field in HOSTNAME_FIELDS:
            return self.hostname
        if field == REGION_FIELD:
            return self.region
        if field == ZONE_FIELD:
            return self.zone
        return self.attributes.get(field)

    @classmethod
    def from_mesos(cls, offer: Mapping[str, Any]) -> OfferView:
        """Build from a Mesos v1 JSON ``Offer`` (``agent_id``) or ``AgentInfo`` (``id``).

        When an attribute name repeats, the first one wins (as in Marathon).
        """
        agent = offer.get("agent_id") or offer.get("id") or {}
        attributes: dict[str, str] = {}
        for attribute in offer.get("attributes", ()):
            name = attribute["name"]
            if name not in attributes:
                attributes[name] = format_attribute(attribute)
        fault_domain = offer.get("domain", {}).get("fault_domain")
        region = zone = None
        if fault_domain:
            region = fault_domain["region"]["name"]
            zone = fault_domain["zone"]["name"]
        return cls(
            hostname=offer["hostname"],
            agent_id=agent.get("value", ""),
            attributes=attributes,
            region=region,
            zone=zone,
        )


def _frozen_count_map(value: Mapping[str | None, int]) -> Mapping[str | None, int]:
    return _FrozenMap({k: n for k, n in value.items() if n > 0})


@attrs.frozen
class Placed:
    """For one app and one constraint field: where the app's instances already are.

    ``counts`` maps a field value to how many placed instances have it; the key ``None``
    counts instances whose agent lacks the field. ``first`` is the value of the earliest
    placed instance (CLUSTER without a value pins the app to it). ``instances`` is the
    app's target instance count (GROUP_BY spreads it over groups).

    The core builds one per constraint field from the app's current instances (not those
    of older config versions, not lost or merely scheduled ones) and calls :meth:`add` for
    every instance it tentatively places in the current offer round, so later offers in
    the round see earlier ones. Reads are O(1); :meth:`add` copies the counts (one entry
    per distinct value).
    """

    instances: int
    counts: Mapping[str | None, int] = attrs.field(factory=dict, converter=_frozen_count_map)
    first: str | None = None
    total: int = attrs.field()

    @total.default
    def _total_default(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def empty(cls, *, instances: int) -> Placed:
        """Nothing placed yet."""
        return cls(instances=instances)

    @classmethod
    def of(cls, values: Iterable[str | None], *, instances: int) -> Placed:
        """From the field values of the placed instances, earliest first."""
        counts: dict[str | None, int] = {}
        first: str | None = None
        for value in values:
            if not counts:
                first = value
            counts[value] = counts.get(value, 0) + 1
        return cls(instances=instances, counts=counts, first=first)

    def add(self, value: str | None) -> Placed:
        """A copy that also counts one more instance placed on ``value``."""
        counts = dict(self.counts)
        counts[value] = counts.get(value, 0) + 1
        first = value if self.total == 0 else self.first
        return Placed(instances=self.instances, counts=counts, first=first, total=self.total + 1)

    def count(self, value: str | None) -> int:
        """How many placed instances have ``value``."""
        return self.counts.get(value, 0)

    @property
    def groups(self) -> int:
        """How many distinct values (including "lacks the field") are in use."""
        return len(self.counts)


# ---------------------------------------------------------------------------------------
# The protocol


@runtime_checkable
class ConstraintOperator(Protocol):
    """What a plugin returns from ``marathon_constraint_operators`` for one operator name.

    The core upper-cases the operator of ``[field, operator, value]`` before the lookup,
    rejects an unknown name with a 422, and checks the 2-or-3 shape and a non-empty
    field itself. ``value`` is None when the constraint has only two elements.

    Implementations must be cheap, synchronous and pure: no I/O, no awaits, no
    randomness, no state that outlives a call (cache compiled values, nothing else).
    """

    #: True when the verdict depends on the instances already placed (UNIQUE, MAX_PER, ...);
    #: False promises it depends on the offer's agent alone, so the core may cache the
    #: verdict per ``(field, value, offer)`` within a round (OfferView is hashable).
    needs_placed: ClassVar[bool]

    def validate(self, field: str, value: str | None) -> None:
        """Raise :class:`ConstraintValidationError` when ``value`` is not acceptable.

        Called at API time for every constraint naming this operator. The message is
        reported at path ``/constraints(i)``. Must not block.
        """
        ...

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        """Whether ``offer`` may host one more instance of the app.

        Called at offer time, only for constraints that passed :meth:`validate` (but a
        stored constraint may predate a stricter rule: reject it, do not raise).

        :param offer: the agent behind the offer.
        :param field: the constraint's field, e.g. ``"rack_id"`` or ``"@hostname"``.
        :param value: the constraint's value, None when absent.
        :param placed: the app's instances on each value of ``field``, including those
            tentatively placed earlier in this round. Ignore it when
            :attr:`needs_placed` is False.
        :returns: :meth:`Fit.yes`, or :meth:`Fit.no` with a reason naming the field and
            the offending value. All constraints of an app must say yes.
        """
        ...
