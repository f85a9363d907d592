"""Health of tasks under the checks Marathon runs itself (HTTP, HTTPS, TCP)."""

from __future__ import annotations

import attrs

from marathon_core.model.ids import Timestamp
from marathon_core.model.instance import InstanceId

__all__ = ["Health"]


@attrs.frozen
class Health:
    """The health of one task under one check, as Marathon reports it."""

    instance_id: InstanceId
    first_success: Timestamp | None = None
    last_success: Timestamp | None = None
    last_failure: Timestamp | None = None
    last_failure_cause: str | None = None
    consecutive_failures: int = 0

    @property
    def alive(self) -> bool:
        """A success, and none of the failures came after the last one."""
        return self.last_success is not None and (
            self.last_failure is None or self.last_success > self.last_failure
        )

    @property
    def has_result(self) -> bool:
        return self.last_success is not None or self.last_failure is not None
