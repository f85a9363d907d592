"""ISO 8601 repeating intervals as Chronos reads them: ``R[n]/start/period``.

``R5/2026-01-01T00:00:00Z/PT10S`` runs five times, ten seconds apart; ``R/...`` (or
``R-1``) repeats forever; ``R0`` never runs. An empty start means "now". The period is
an ISO 8601 duration, ``PnYnMnDTnHnMnS`` or ``PnW``. A start without an offset is read
in ``scheduleTimeZone`` (UTC by default); calendar parts of the period (years, months,
weeks, days) step in that zone's wall-clock time, so a daily job stays at 02:00 across
a daylight-saving change, as Chronos's Joda arithmetic does.

Slots are numbered: slot ``k`` is ``start + k * period``, computed from the start each
time (not by adding periods one after another), so the scheduler stores only the next
slot's number and finds any slot again after a failover.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

__all__ = ["Duration", "Schedule", "ScheduleError", "parse_duration", "parse_schedule"]

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_REPEAT = re.compile(r"^R(-1|\d*)$")


class ScheduleError(ValueError):
    """A schedule or duration that cannot be read."""


@attrs.frozen
class Duration:
    """An ISO 8601 duration: calendar parts and an exact part (seconds)."""

    text: str
    years: int = 0
    months: int = 0
    days: int = 0
    seconds: float = 0.0

    @property
    def is_zero(self) -> bool:
        return not (self.years or self.months or self.days or self.seconds)

    @property
    def approximate_seconds(self) -> float:
        """For ``epsilon``: a month as 30 days, a year as 365."""
        return (self.years * 365 + self.months * 30 + self.days) * 86400 + self.seconds

    def times(self, start: datetime, count: int, zone: ZoneInfo) -> datetime:
        """``start + count * self``: calendar steps in ``zone``'s wall clock, then seconds."""
        local = start.astimezone(zone)
        months = local.month - 1 + count * (self.years * 12 + self.months)
        year, month = local.year + months // 12, months % 12 + 1
        day = min(local.day, _days_in(year, month))
        wall = local.replace(tzinfo=None, year=year, month=month, day=day)
        wall += timedelta(days=count * self.days)
        return wall.replace(tzinfo=zone).astimezone(UTC) + timedelta(seconds=count * self.seconds)


def _days_in(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def parse_duration(text: str) -> Duration:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ScheduleError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: float(v) if k == "seconds" else int(v) for k, v in match.groupdict().items() if v}
    return Duration(
        text=text.strip(),
        years=int(parts.get("years", 0)),
        months=int(parts.get("months", 0)),
        days=int(parts.get("weeks", 0)) * 7 + int(parts.get("days", 0)),
        seconds=parts.get("hours", 0) * 3600 + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0.0),
    )  # fmt: skip


def parse_zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


@attrs.frozen
class Schedule:
    """A parsed ``R[n]/start/period``; ``repeats`` None means forever."""

    repeats: int | None
    start: datetime
    period: Duration
    zone: ZoneInfo

    def slot(self, index: int) -> datetime | None:
        """The due time of slot ``index`` (UTC), None past the last repetition."""
        if self.repeats is not None and index >= self.repeats:
            return None
        return self.period.times(self.start, index, self.zone)

    def first_index_after(self, moment: datetime) -> int:
        """The number of the first slot at or after ``moment``."""

        def at(i: int) -> datetime:
            return self.period.times(self.start, i, self.zone)

        estimate = (moment - self.start).total_seconds() // self.period.approximate_seconds
        index = max(0, int(estimate))
        while index > 0 and at(index - 1) >= moment:
            index -= 1
        while at(index) < moment:
            index += 1
        return index

    def text_from(self, index: int) -> str:
        """This schedule restarted at slot ``index``, as Chronos shows a job's schedule."""
        at = self.slot(index) or self.period.times(self.start, index, self.zone)
        repeats = "" if self.repeats is None else str(max(0, self.repeats - index))
        stamp = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return f"R{repeats}/{stamp}/{self.period.text}"


def parse_schedule(text: str, zone_name: str | None = None, *, now: datetime) -> Schedule:
    """Parse ``R[n]/start/period``; :class:`ScheduleError` says what is wrong."""
    parts = text.strip().split("/")
    if len(parts) != 3:
        raise ScheduleError(f"expected R[n]/start/period, got {text!r}")
    repeat, start_text, period_text = parts
    match = _REPEAT.match(repeat)
    if match is None:
        raise ScheduleError(f"bad repetition {repeat!r}")
    repeats = None if match.group(1) in ("", "-1") else int(match.group(1))
    zone = parse_zone(zone_name)
    if start_text:
        try:
            start = datetime.fromisoformat(start_text)
        except ValueError:
            raise ScheduleError(f"bad start {start_text!r}") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
    else:
        start = now
    period = parse_duration(period_text)
    if period.is_zero:
        raise ScheduleError("the period must not be zero")
    return Schedule(repeats, start.astimezone(UTC), period, zone)
