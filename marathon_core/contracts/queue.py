"""What the leader shows per app waiting to launch (``/v2/queue``).

Marathon's queue only counted reasons, and its users kept asking "why isn't my app
starting?". So every entry keeps the reasons of the last offers the app was matched
against, Marathon's funnel summary of them, the human detail of the latest rejection
and the best near miss per scarce resource ("needs 2 cpus, best offer had 1.5 on
host-a").
"""

from __future__ import annotations

import attrs

from marathon_core.contracts.placement import NoOfferMatchReason
from marathon_core.model.ids import PathId, Timestamp

__all__ = ["QueueEntry", "RejectSummary"]


@attrs.frozen
class RejectSummary:
    """Marathon's ``rejectSummaryLastOffers`` entry: of ``processed`` offers still in
    the funnel at this reason, ``declined`` were rejected for it."""

    reason: NoOfferMatchReason
    declined: int
    processed: int


@attrs.frozen
class QueueEntry:
    """One waiting app, ready for ``/v2/queue``."""

    app_id: PathId
    #: Instances still to launch.
    count: int
    role: str
    delay_time_left: float
    delay_overdue: bool
    since: Timestamp | None
    processed_offers: int
    unused_offers: int
    last_unused_offer_at: Timestamp | None
    last_used_offer_at: Timestamp | None
    reject_summary: tuple[RejectSummary, ...]
    #: The human detail of the latest rejection(s).
    last_reasons: tuple[str, ...]
    #: Best offer seen per insufficient resource, e.g. "needs 2 cpus, best offer had 1.5 (h1)".
    near_misses: tuple[str, ...]
    #: Set when the app cannot be launched at all (no runtime plugin builds its tasks).
    not_launchable: str | None
