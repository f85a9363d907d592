"""Marathon's rules for one probe result (the leader's health monitor)."""

from __future__ import annotations

from marathon_core.contracts.health import ProbeResult
from marathon_core.leader.health import apply_result
from marathon_core.model.app import HealthCheck
from marathon_core.model.codec import health_to_json
from marathon_core.model.health import Health
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import InstanceId

IID = InstanceId.new(PathId(("app",)))
CHECK = HealthCheck(grace_period_seconds=10, max_consecutive_failures=2)
START = Timestamp(1_000_000)


def at(seconds: float) -> Timestamp:
    return Timestamp(START.millis + int(seconds * 1000))


FAIL = ProbeResult.unhealthy("503 Service Unavailable")
OK = ProbeResult.healthy()


def run(results: list[tuple[float, ProbeResult]], check: HealthCheck = CHECK) -> list[bool]:
    """Apply results at their times; the kill decisions in order."""
    health = Health(IID)
    kills = []
    for when, result in results:
        verdict = apply_result(health, result, check=check, now=at(when), started_at=START)
        health = verdict.health
        kills.append(verdict.kill)
    return kills


def test_success_sets_first_and_last_success_and_alive() -> None:
    verdict = apply_result(Health(IID), OK, check=CHECK, now=at(1), started_at=START)
    assert verdict.health.alive and verdict.health.first_success == at(1)
    again = apply_result(verdict.health, OK, check=CHECK, now=at(2), started_at=START)
    assert again.health.first_success == at(1) and again.health.last_success == at(2)


def test_failures_in_the_grace_period_before_any_success_are_ignored() -> None:
    verdict = apply_result(Health(IID), FAIL, check=CHECK, now=at(9), started_at=START)
    assert verdict.health == Health(IID) and not verdict.failed
    after = apply_result(Health(IID), FAIL, check=CHECK, now=at(10), started_at=START)
    assert after.failed and after.health.consecutive_failures == 1
    assert after.health.last_failure_cause == "503 Service Unavailable"


def test_failures_after_a_first_success_count_even_in_the_grace_period() -> None:
    ok = apply_result(Health(IID), OK, check=CHECK, now=at(1), started_at=START).health
    verdict = apply_result(ok, FAIL, check=CHECK, now=at(2), started_at=START)
    assert verdict.failed and not verdict.health.alive
    assert verdict.health.consecutive_failures == 1


def test_kill_at_the_failure_after_max_consecutive_failures() -> None:
    assert run([(11, FAIL), (12, FAIL), (13, FAIL)]) == [False, False, True]


def test_a_success_resets_the_count() -> None:
    assert run([(11, FAIL), (12, FAIL), (13, OK), (14, FAIL), (15, FAIL)]) == [False] * 5


def test_max_consecutive_failures_zero_never_kills() -> None:
    check = HealthCheck(grace_period_seconds=0, max_consecutive_failures=0)
    assert not any(run([(t, FAIL) for t in range(1, 20)], check))


def test_failures_of_a_task_not_running_are_ignored() -> None:
    verdict = apply_result(
        Health(IID), FAIL, check=CHECK, now=at(60), started_at=START, running=False
    )
    assert not verdict.failed and verdict.health == Health(IID)


def test_ignored_results_change_nothing() -> None:
    verdict = apply_result(
        Health(IID), ProbeResult.ignored(), check=CHECK, now=at(60), started_at=START
    )
    assert verdict.health == Health(IID)


def test_alive_needs_the_last_success_after_the_last_failure() -> None:
    assert not Health(IID).alive
    assert Health(IID, last_success=at(2), last_failure=at(1)).alive
    assert not Health(IID, last_success=at(1), last_failure=at(2)).alive


def test_health_json_is_marathons_shape() -> None:
    out = health_to_json(Health(IID, first_success=at(1), last_success=at(1)))
    assert out == {
        "alive": True,
        "consecutiveFailures": 0,
        "firstSuccess": str(at(1)),
        "lastFailure": None,
        "lastSuccess": str(at(1)),
        "lastFailureCause": None,
        "instanceId": str(IID),
    }
