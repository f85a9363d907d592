"""How HTTP statuses read as probe results."""

from __future__ import annotations

import pytest

from marathon_core.contracts.health import Outcome
from marathon_healthchecks.protocols import http_verdict


@pytest.mark.parametrize(
    ("status", "ignore", "outcome"),
    [
        (200, False, Outcome.HEALTHY),
        (204, False, Outcome.HEALTHY),
        (301, False, Outcome.HEALTHY),
        (399, False, Outcome.HEALTHY),
        (400, False, Outcome.UNHEALTHY),
        (404, False, Outcome.UNHEALTHY),
        (500, False, Outcome.UNHEALTHY),
        (199, False, Outcome.UNHEALTHY),
        (100, True, Outcome.IGNORED),
        (199, True, Outcome.IGNORED),
        (503, True, Outcome.UNHEALTHY),
    ],
)
def test_http_statuses(status: int, ignore: bool, outcome: Outcome) -> None:
    assert http_verdict(status, "x", ignore_http1xx=ignore).outcome is outcome
