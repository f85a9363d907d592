"""The health-check contract (hook ``marathon_health_check_protocols``).

A protocol validates an app's health check at API time. A protocol that Marathon
runs itself (HTTP, HTTPS, TCP) also has a :class:`HealthChecker`, whose ``probe`` the
leader calls for every Running task; protocols whose ``checker`` is None (COMMAND,
MESOS_*) are run by the Mesos agent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Protocol

import attrs

from marathon_core.errors import Violation
from marathon_core.model.app import AppDefinition, HealthCheck

__all__ = ["HealthCheckProtocol", "HealthChecker", "KillStatistics", "Outcome", "ProbeResult"]


class Outcome(enum.Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    #: No verdict (an HTTP 1xx with ``ignoreHttp1xx``): health stays as it was.
    IGNORED = "ignored"


@attrs.frozen
class ProbeResult:
    """What one probe found; ``cause`` says why it failed (``lastFailureCause``)."""

    outcome: Outcome
    cause: str | None = None

    @classmethod
    def healthy(cls) -> ProbeResult:
        return cls(Outcome.HEALTHY)

    @classmethod
    def unhealthy(cls, cause: str) -> ProbeResult:
        return cls(Outcome.UNHEALTHY, cause)

    @classmethod
    def ignored(cls) -> ProbeResult:
        return cls(Outcome.IGNORED)


@attrs.frozen
class KillStatistics:
    """The leader's kills for failing health checks since its term began (metrics)."""

    #: Tasks killed.
    killed: int = 0
    #: Kills put off because the kill rate was used up (each deferral counted once).
    deferred: int = 0
    #: Tasks waiting for a kill token now.
    pending: int = 0
    #: Deferred kills called off because the task passed a check meanwhile.
    spared: int = 0


class HealthChecker(Protocol):
    """The run-time half of a protocol the scheduler runs.

    ``probe`` checks ``host:port`` once and returns a :class:`ProbeResult`; it should
    give up after ``timeout`` seconds (the core also cancels it then and counts a
    failure). It must not raise for an unreachable or failing task: that is an
    unhealthy result.
    """

    async def probe(
        self, check: HealthCheck, *, host: str, port: int, timeout: float
    ) -> ProbeResult: ...


class HealthCheckProtocol(Protocol):
    """One health-check protocol: API-time validation, and the probe if Marathon runs it."""

    @property
    def checker(self) -> HealthChecker | None:
        """The probe the leader runs, or None when the Mesos agent runs this protocol."""
        ...

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> Iterable[Violation]:
        """Protocol-specific problems of ``check`` (a HealthCheck found at ``path``)."""
        ...
