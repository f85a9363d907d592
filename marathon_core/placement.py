"""The placement-constraint operator protocol that constraint plugins implement.

An operator answers two questions about one constraint ``[field, OPERATOR, value]``:
at API time whether the value is acceptable (:meth:`ConstraintOperator.validate`), and
at offer time whether an offer fits given the instances already placed
(:meth:`ConstraintOperator.filter`). "Does not fit" is a :class:`Fit` result, never an
exception; an exception from ``filter`` is a plugin bug.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import attrs

__all__ = ["ConstraintOperator", "ConstraintValidationError", "Fit"]


class ConstraintValidationError(Exception):
    """The constraint's value is unacceptable; ``message`` is shown to the user (422)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class Fit:
    """The verdict of one operator on one offer; ``reason`` explains a rejection."""

    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls) -> Fit:
        return _YES

    @classmethod
    def no(cls, reason: str) -> Fit:
        return cls(False, reason)


_YES = Fit(True)


class ConstraintOperator(Protocol):
    """What a plugin returns from ``marathon_constraint_operators`` for one operator name."""

    #: True when the verdict depends on the instances already placed (UNIQUE, MAX_PER, ...);
    #: False lets the core cache the verdict per set of agent attributes.
    needs_placed: ClassVar[bool]

    def validate(self, field: str, value: str | None) -> None:
        """Raise :class:`ConstraintValidationError` when ``value`` is not acceptable.

        Called at API time for every constraint naming this operator. Must not block.
        """
        ...
