"""Marathon's events in their wire form: the one place event JSON is built.

Every event is a JSON object with ``eventType``, ``timestamp`` (UTC, milliseconds,
``Z``) and the fields of its type, as ``/v2/events``, HTTP callbacks and the
``marathon_event`` hook deliver it. Components publish what these functions return;
they never assemble event dicts themselves, so field names live here and in
:mod:`marathon_core.model.codec` only.
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = ["make_event", "timestamp_now"]


def timestamp_now() -> str:
    """Marathon's timestamp form: UTC with milliseconds and ``Z``."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def make_event(event_type: str, **fields: Any) -> dict[str, Any]:
    """An event of ``event_type`` with ``fields`` as given, stamped now."""
    return {"eventType": event_type, "timestamp": timestamp_now(), **fields}
