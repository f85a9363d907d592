"""Marathon's placement operators, with Marathon's semantics and validation messages.

Each operator is a small frozen object satisfying
:class:`marathon_core.contracts.placement.ConstraintOperator`. Values compare as strings
after Marathon's attribute stringification (done by
:class:`~marathon_core.contracts.placement.OfferView`).
An offer lacking the field is rejected by every operator except UNLIKE.

GROUP_BY follows Marathon 1.11: with ``n`` groups wanted, each group targets
``instances // n`` instances, ``instances % n`` groups may take one more, and a new group is
opened only while fewer than ``n`` are in use. Marathon 1.11 divides by zero when no
(or a non-positive) count is given; there we keep the classic (<= 1.10) rule that
Marathon's documentation still describes: a new value is always welcome, an existing one
only while it holds the fewest instances.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Container, Hashable, Sequence
from typing import ClassVar, Generic, TypeVar

import attrs

from marathon_core.contracts.placement import (
    ConstraintOperator,
    ConstraintValidationError,
    Fit,
    OfferView,
    Placed,
    format_scalar,
)

__all__ = [
    "Cluster",
    "GroupBy",
    "Is",
    "Like",
    "MaxPer",
    "Unique",
    "Unlike",
    "operators",
    "select_instances_to_kill",
]

# Validation messages, word for word Marathon's (reported at path /constraints(i)).
MISSING_FIELD = "missing field for constraint declaration"
UNIQUE_TAKES_NO_VALUE = "UNIQUE does not accept a value"
GROUP_BY_NEEDS_INT_OR_NOTHING = "GROUP BY must define an integer value or else no value at all"
MAX_PER_NEEDS_INT = "MAX_PER requires an integer value"
LIKE_NEEDS_REGEX = "LIKE and UNLIKE require a non-empty, regular expression value"
INVALID_REGEX = "is not a valid regular expression"
IS_NEEDS_TEXT_OR_FLOAT = (
    "IS only supports Mesos text and float values "
    "(see http://mesos.apache.org/documentation/latest/attributes-resources/)"
)

_INT = re.compile(r"[+-]?\d+")  # java.lang.Integer.parseInt: sign, then decimal digits
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_IS_VALUE = re.compile(r"[a-zA-Z0-9_/.-]*")  # Mesos text or scalar literal
_SCALAR_VALUE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@functools.lru_cache(maxsize=256)
def _parse_int(value: str) -> int | None:
    """A Java ``int`` as ``Integer.parseInt`` reads it, or None."""
    if not _INT.fullmatch(value):
        return None
    number = int(value)
    return number if _INT_MIN <= number <= _INT_MAX else None


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    """Compile once; the patterns of all apps are few and reused on every offer."""
    return re.compile(pattern)


@functools.lru_cache(maxsize=256)
def _is_target(value: str) -> str:
    """IS compares against the value formatted as a scalar when it looks numeric."""
    return format_scalar(float(value)) if _SCALAR_VALUE.fullmatch(value) else value


def _require_field(field: str) -> None:
    if not field:
        raise ConstraintValidationError(MISSING_FIELD)


def _lacks(operator: str, field: str) -> Fit:
    return Fit.no(f"{operator}: the offer has no {field}")


@attrs.frozen
class Unique:
    """``[field, "UNIQUE"]``: no two instances share a value of ``field``."""

    needs_placed: ClassVar[bool] = True

    def validate(self, field: str, value: str | None) -> None:
        _require_field(field)
        if value is not None:
            raise ConstraintValidationError(UNIQUE_TAKES_NO_VALUE)

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return _lacks("UNIQUE", field)
        used = placed.count(actual)
        if used:
            return Fit.no(f"UNIQUE: {field}={actual} already has {used} instance(s)")
        return Fit.yes()


@attrs.frozen
class Cluster:
    """``[field, "CLUSTER", value?]``: all instances on one value of ``field``.

    With a value, the offer's value must equal it. Without one, the first placed
    instance's value is the one all others follow.
    """

    #: Only the value-less form looks at placements, but the flag is per operator.
    needs_placed: ClassVar[bool] = True

    def validate(self, field: str, value: str | None) -> None:
        _require_field(field)

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return _lacks("CLUSTER", field)
        if value:
            if actual == value:
                return Fit.yes()
            return Fit.no(f"CLUSTER: {field}={actual}, wanted {value}")
        if placed.total == 0 or placed.first == actual:
            return Fit.yes()
        return Fit.no(f"CLUSTER: {field}={actual}, instances are on {placed.first}")


@attrs.frozen
class GroupBy:
    """``[field, "GROUP_BY", n?]``: spread instances evenly over values of ``field``."""

    needs_placed: ClassVar[bool] = True

    def validate(self, field: str, value: str | None) -> None:
        _require_field(field)
        if value is not None and _parse_int(value) is None:
            raise ConstraintValidationError(GROUP_BY_NEEDS_INT_OR_NOTHING)

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return _lacks("GROUP_BY", field)
        # Like Marathon, an unreadable count means "no count".
        wanted = max(0, (_parse_int(value) if value is not None else None) or 0)
        if wanted == 0:
            return self._classic(field, actual, placed)
        return self._spread(field, actual, wanted, placed)

    @staticmethod
    def _classic(field: str, actual: str, placed: Placed) -> Fit:
        count = placed.counts.get(actual)
        if count is None:
            return Fit.yes()
        fewest = min(placed.counts.values())
        if count == fewest:
            return Fit.yes()
        return Fit.no(
            f"GROUP_BY: {field}={actual} has {count} instance(s), another value has {fewest}"
        )

    @staticmethod
    def _spread(field: str, actual: str, wanted: int, placed: Placed) -> Fit:
        count = placed.counts.get(actual)
        if count is None:
            if placed.groups < wanted:
                return Fit.yes()
            return Fit.no(f"GROUP_BY: {placed.groups} of {wanted} values of {field} in use")
        per_group, remainder = divmod(placed.instances, wanted)
        if count < per_group:
            return Fit.yes()
        if count == per_group:
            extra = sum(n - per_group for n in placed.counts.values() if n > per_group)
            if remainder > extra:
                return Fit.yes()
        return Fit.no(
            f"GROUP_BY: {field}={actual} has {count} instance(s), "
            f"target {per_group} per value (+1 on {remainder} value(s))"
        )


@attrs.frozen
class Like:
    """``[field, "LIKE", regex]``: the value fully matches the regex."""

    needs_placed: ClassVar[bool] = False

    def validate(self, field: str, value: str | None) -> None:
        _validate_regex(field, value)

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return _lacks("LIKE", field)
        if not value:
            return Fit.no("LIKE: no regular expression")
        if _regex(value).fullmatch(actual):
            return Fit.yes()
        return Fit.no(f"LIKE: {field}={actual} does not match {value}")


@attrs.frozen
class Unlike:
    """``[field, "UNLIKE", regex]``: the value does not fully match, or is missing."""

    needs_placed: ClassVar[bool] = False

    def validate(self, field: str, value: str | None) -> None:
        _validate_regex(field, value)

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return Fit.yes()
        if not value:
            return Fit.no("UNLIKE: no regular expression")
        if _regex(value).fullmatch(actual):
            return Fit.no(f"UNLIKE: {field}={actual} matches {value}")
        return Fit.yes()


def _validate_regex(field: str, value: str | None) -> None:
    _require_field(field)
    if value is None:
        raise ConstraintValidationError(LIKE_NEEDS_REGEX)
    try:
        _regex(value)
    except re.error:
        raise ConstraintValidationError(INVALID_REGEX) from None


@attrs.frozen
class MaxPer:
    """``[field, "MAX_PER", n]``: at most ``n`` instances per value of ``field``."""

    needs_placed: ClassVar[bool] = True

    def validate(self, field: str, value: str | None) -> None:
        _require_field(field)
        if value is None or _parse_int(value) is None:
            raise ConstraintValidationError(MAX_PER_NEEDS_INT)

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return _lacks("MAX_PER", field)
        limit = _parse_int(value) if value is not None else None
        if limit is None:
            return Fit.no(f"MAX_PER: {value!r} is not an integer")
        count = placed.count(actual)
        if count < limit:
            return Fit.yes()
        return Fit.no(f"MAX_PER: {field}={actual} already has {count} of {limit} instance(s)")


@attrs.frozen
class Is:
    """``[field, "IS", literal]``: the value equals the literal (scalars compared formatted)."""

    needs_placed: ClassVar[bool] = False

    def validate(self, field: str, value: str | None) -> None:
        _require_field(field)
        if not _IS_VALUE.fullmatch(value or ""):
            raise ConstraintValidationError(IS_NEEDS_TEXT_OR_FLOAT)

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return _lacks("IS", field)
        target = _is_target(value or "")
        if actual == target:
            return Fit.yes()
        return Fit.no(f"IS: {field}={actual}, wanted {target}")


def operators() -> dict[str, ConstraintOperator]:
    """The operators of this plugin by name."""
    return {
        "UNIQUE": Unique(),
        "CLUSTER": Cluster(),
        "GROUP_BY": GroupBy(),
        "LIKE": Like(),
        "UNLIKE": Unlike(),
        "MAX_PER": MaxPer(),
        "IS": Is(),
    }


# ---------------------------------------------------------------------------------------
# Scale-down: which instances to kill so GROUP_BY groups stay balanced

T = TypeVar("T", bound=Hashable)
U = TypeVar("U", bound=Hashable)


@attrs.frozen
class _Distribution(Generic[U]):
    """The running instances of one GROUP_BY field, partitioned by value."""

    groups: tuple[tuple[U, ...], ...]

    @classmethod
    def of(cls, running: Sequence[U], key: Callable[[U], str | None]) -> _Distribution[U]:
        by_value: dict[str | None, list[U]] = {}
        for item in running:
            by_value.setdefault(key(item), []).append(item)
        return cls(tuple(tuple(group) for group in by_value.values()))

    def _remaining(self, without: Container[U]) -> list[list[U]]:
        return [[item for item in group if item not in without] for group in self.groups]

    def difference(self, without: Container[U] = ()) -> int:
        sizes = [len(group) for group in self._remaining(without)]
        return max(sizes) - min(sizes)

    def from_largest(self, without: Container[U]) -> list[U]:
        remaining = self._remaining(without)
        largest = max(len(group) for group in remaining)
        if all(len(group) == largest for group in remaining):
            return []
        return [item for group in remaining if len(group) == largest for item in group]

    def more_even_without(self, selected: Container[U]) -> bool:
        after = self.difference(selected)
        return after <= 1 or self.difference() > after


def select_instances_to_kill(
    running: Sequence[T], count: int, group_keys: Sequence[Callable[[T], str | None]]
) -> list[T]:
    """Pick up to ``count`` of ``running`` to kill so every GROUP_BY field stays balanced.

    ``group_keys`` reads, for each GROUP_BY constraint of the app, an instance's value of
    that field (None when its agent lacks it). Returns fewer than ``count`` when no
    further kill keeps the groups even, and nothing at all without GROUP_BY constraints:
    the caller then falls back to the app's ``killSelection``.
    """
    if count > len(running):
        raise ValueError("cannot kill more instances than are running")
    if count == len(running):
        return list(running)
    if count <= 0 or not group_keys:
        return []
    distributions = [_Distribution.of(running, key) for key in group_keys]
    selected: dict[T, None] = {}  # an ordered set
    while len(selected) < count:
        ranked = sorted(distributions, key=lambda d: d.difference(selected), reverse=True)
        candidates = [item for d in ranked for item in d.from_largest(selected)]
        candidates += [item for item in running if item not in selected]
        for item in candidates:
            trial = {**selected, item: None}
            if all(d.more_even_without(trial) for d in distributions):
                selected[item] = None
                break
        else:
            break
    return list(selected)
