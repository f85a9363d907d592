"""The ``constraints`` plugin: registers Marathon's placement operators with the core."""

from __future__ import annotations

from collections.abc import Mapping

from marathon_constraints.operators import operators
from marathon_core import hookimpl
from marathon_core.contracts.placement import ConstraintOperator


@hookimpl
def marathon_constraint_operators() -> Mapping[str, ConstraintOperator]:
    """UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER and IS."""
    return operators()
