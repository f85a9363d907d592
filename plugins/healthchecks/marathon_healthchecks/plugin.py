"""The ``healthchecks`` plugin: registers Marathon's health-check protocols with the core."""

from __future__ import annotations

from collections.abc import Mapping

from marathon_core import hookimpl
from marathon_core.contracts.health import HealthCheckProtocol
from marathon_healthchecks.protocols import protocols


@hookimpl
def marathon_health_check_protocols() -> Mapping[str, HealthCheckProtocol]:
    """HTTP, HTTPS and TCP (run by the scheduler); COMMAND and MESOS_* (run by the agent)."""
    return protocols()
