"""The backoff countdown: the server's format and the span ``live.js`` ticks down."""

from __future__ import annotations

import pytest

from marathon_core.contracts.queue import QueueEntry
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId
from marathon_ui.data import Status, app_row, format_delay
from marathon_ui.render import html

APP = PathId.parse("/flaky")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "now"), (0.4, "1s"), (1, "1s"), (59, "59s"), (59.4, "1m 00s"), (60, "1m 00s"),
     (65, "1m 05s"), (3599, "59m 59s"), (3600, "1h 00m"), (7325, "2h 02m"), (-3, "now")],
)  # fmt: skip
def test_format_delay(seconds: float, text: str) -> None:
    assert format_delay(seconds) == text


def entry(delay: float, overdue: bool = False) -> QueueEntry:
    return QueueEntry(
        app_id=APP, count=1, role="*", delay_time_left=delay, delay_overdue=overdue,
        since=None, processed_offers=0, unused_offers=0, last_unused_offer_at=None,
        last_used_offer_at=None, reject_summary=(), last_reasons=(), near_misses=(),
        not_launchable=None,
    )  # fmt: skip


def test_a_backing_off_row_renders_a_ticking_span() -> None:
    row = app_row(AppDefinition(id=APP, cmd="false"), [], [], None, entry(75.2))
    assert row.status is Status.DELAYED
    assert row.reason == "backing off after task failures: next launch in 1m 16s"
    assert row.countdown == ("backing off after task failures: next launch in ", "1m 16s", "")
    body = html("app_rows.html", ids=[str(APP)], rows={str(APP): row}).body.decode()
    assert '<span class="countdown" data-seconds="75.2">1m 16s</span>' in body


def test_no_countdown_once_the_delay_is_over() -> None:
    row = app_row(AppDefinition(id=APP, cmd="false"), [], [], None, entry(5, overdue=True))
    assert row.delay_left is None and row.countdown is None
    body = html("app_rows.html", ids=[str(APP)], rows={str(APP): row}).body.decode()
    assert "countdown" not in body
