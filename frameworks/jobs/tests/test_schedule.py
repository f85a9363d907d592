"""ISO 8601 repeating schedules: parsing, slots, time zones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marathon_jobs.schedule import ScheduleError, parse_duration, parse_schedule

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT10S", 10), ("PT1M30S", 90), ("PT2H", 7200), ("P1D", 86400), ("P2W", 14 * 86400),
     ("P1DT1H", 90000), ("PT0.5S", 0.5)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).approximate_seconds == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "10S", "P1H", "PT1D", "P-1D", "PXD"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_duration(text)


def test_slots_repeat_n_times() -> None:
    schedule = parse_schedule("R3/2026-03-01T12:00:00Z/PT10S", now=NOW)
    assert [schedule.slot(i) for i in range(4)] == [
        datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 20, tzinfo=UTC),
        None,
    ]


def test_forever_and_never() -> None:
    assert parse_schedule("R/2026-03-01T12:00:00Z/PT1M", now=NOW).slot(10_000) is not None
    assert parse_schedule("R0/2026-03-01T12:00:00Z/PT1M", now=NOW).slot(0) is None


def test_an_empty_start_is_now() -> None:
    assert parse_schedule("R1//PT1M", now=NOW).slot(0) == NOW


def test_months_step_in_the_calendar() -> None:
    schedule = parse_schedule("R/2026-01-31T00:00:00Z/P1M", now=NOW)
    assert schedule.slot(1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert schedule.slot(2) == datetime(2026, 3, 31, tzinfo=UTC)


def test_days_keep_the_wall_clock_across_daylight_saving() -> None:
    # Europe/Berlin moves to summer time on 2026-03-29: 02:00 local stays 02:00 local.
    schedule = parse_schedule("R/2026-03-28T02:00:00/P1D", "Europe/Berlin", now=NOW)
    assert schedule.slot(0) == datetime(2026, 3, 28, 1, 0, tzinfo=UTC)
    assert schedule.slot(2) == datetime(2026, 3, 30, 0, 0, tzinfo=UTC)


def test_first_slot_after_a_moment() -> None:
    schedule = parse_schedule("R/2026-01-01T00:00:00Z/P1M", now=NOW)
    assert schedule.first_index_after(datetime(2026, 3, 15, tzinfo=UTC)) == 3
    assert schedule.first_index_after(datetime(2026, 3, 1, tzinfo=UTC)) == 2
    assert schedule.first_index_after(datetime(2025, 1, 1, tzinfo=UTC)) == 0


def test_text_from_a_slot_is_what_chronos_shows() -> None:
    schedule = parse_schedule("R5/2026-03-01T12:00:00Z/PT10S", now=NOW)
    assert schedule.text_from(2) == "R3/2026-03-01T12:00:20.000Z/PT10S"


@pytest.mark.parametrize(
    "text",
    ["R/2026-03-01T12:00:00Z", "X/2026-03-01T12:00:00Z/PT1S", "R/not-a-date/PT1S",
     "R/2026-03-01T12:00:00Z/PT0S", "Rx/2026-03-01T12:00:00Z/PT1S"],
)  # fmt: skip
def test_bad_schedules(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(text, now=NOW)


def test_unknown_zone() -> None:
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse_schedule("R/2026-03-01T12:00:00/PT1S", "Mars/Olympus", now=NOW)
