"""``[field, "IN_SET", "a,b,c"]``: the agent's value must be one of the listed values."""

from __future__ import annotations

from typing import ClassVar

import attrs

from marathon_core.contracts.placement import ConstraintValidationError, Fit, OfferView, Placed


@attrs.frozen
class InSet:
    # The verdict depends on the agent alone, so the core may cache it per agent class.
    needs_placed: ClassVar[bool] = False

    def validate(self, field: str, value: str | None) -> None:
        if not value or not all(value.split(",")):
            raise ConstraintValidationError("IN_SET requires a comma-separated list of values")

    def filter(self, offer: OfferView, field: str, value: str | None, placed: Placed) -> Fit:
        actual = offer.attribute(field)
        if actual is None:
            return Fit.no(f"IN_SET: the offer has no {field}")
        if actual in (value or "").split(","):
            return Fit.yes()
        return Fit.no(f"IN_SET: {field}={actual} is not one of {value}")
