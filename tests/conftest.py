"""Shared fixtures for the core's tests: example fixtures and a ValidationContext."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from marathon_core.errors import Violation
from marathon_core.model.validation import ValidationContext

#: Marathon-compatible request fixtures (the team's reference set, kept with the tests).
EXAMPLES = Path(__file__).parent / "data" / "marathon-examples"

HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")


class _AcceptAll:
    """Test-only stand-in for a runtime / health-check plugin: accepts everything.

    No runtime or health-check plugin exists yet; replace these with the real plugins'
    registries once ``marathon-runtime-*`` and ``marathon-healthchecks`` ship.
    """

    #: Health checks are validated only; the leader runs no probe for them.
    checker = None

    def validate(self, *args: Any, **kwargs: Any) -> Iterable[Violation]:
        return ()


def _real_constraint_operators() -> dict[str, Any] | None:
    try:
        from marathon_constraints.plugin import marathon_constraint_operators
    except ImportError:
        return None
    return dict(marathon_constraint_operators())


@pytest.fixture(scope="session")
def constraint_operators() -> dict[str, Any]:
    """The real constraints plugin's operators; skip without it (fail when CI=true)."""
    ops = _real_constraint_operators()
    if ops is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("marathon-constraints is not installed (required when CI=true)")
        pytest.skip("marathon-constraints is not installed")
    return ops


@pytest.fixture(scope="session")
def validation_context(constraint_operators: dict[str, Any]) -> ValidationContext:
    return make_context(constraint_operators)


@pytest.fixture(scope="session")
def basic_context() -> ValidationContext:
    """A context without constraint operators, for tests that never use constraints."""
    return make_context({})


def make_context(ops: dict[str, Any], **kwargs: Any) -> ValidationContext:
    stand_in = _AcceptAll()
    return ValidationContext(
        constraint_operators=ops,
        container_runtimes={"DOCKER": stand_in, "MESOS": stand_in},
        health_check_protocols=dict.fromkeys(HEALTH_PROTOCOLS, stand_in),
        **kwargs,
    )


def load_example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())
