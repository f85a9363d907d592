"""Shared fixtures for the core's tests: example fixtures and a ValidationContext."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from marathon_constraints.plugin import marathon_constraint_operators
from marathon_core.errors import Violation
from marathon_core.model.validation import ValidationContext

#: Marathon-compatible request fixtures, kept with the tests (see their README.md).
EXAMPLES = Path(__file__).parent / "data" / "marathon-examples"

HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")


class _AcceptAll:
    """Test-only stand-in for a runtime / health-check plugin: accepts everything.

    The core's tests run without those plugins installed, so container runtimes and
    health-check protocols accept everything here; ``marathon-runtime-mesos`` and
    ``marathon-healthchecks`` test their own validation.
    """

    #: Health checks: none run by the scheduler.
    checker = None

    def validate(self, *args: Any, **kwargs: Any) -> Iterable[Violation]:
        return ()

    def build_task_info(
        self, *, app: Any, task_info: dict[str, Any], host_ports: Sequence[int]
    ) -> None:
        """Container runtimes: the core's command TaskInfo as it is."""


@pytest.fixture(scope="session")
def constraint_operators() -> dict[str, Any]:
    """The real constraints plugin's operators (marathon-constraints is in the test extra)."""
    return dict(marathon_constraint_operators())


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
