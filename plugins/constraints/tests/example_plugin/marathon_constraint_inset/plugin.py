"""The hook implementation the ``marathon`` entry point names."""

from __future__ import annotations

from collections.abc import Mapping

from marathon_constraint_inset.operator import InSet
from marathon_core import hookimpl
from marathon_core.contracts.placement import ConstraintOperator


@hookimpl
def marathon_constraint_operators() -> Mapping[str, ConstraintOperator]:
    return {"IN_SET": InSet()}
