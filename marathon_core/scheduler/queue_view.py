"""What ``/v2/queue`` shows per waiting app: counts, delay, and why offers were not used.

Marathon's queue only counted reasons; its users asked "why isn't my app starting?"
(clients.md §4 #2). For every app we keep the reasons of the last offers it was
matched against, Marathon's funnel summary of them, the human detail of the latest
rejection and the best near miss per scarce resource ("needs 2 cpus, best offer
had 1.5 on host-a").
"""

from __future__ import annotations

import collections

import attrs

from marathon_core.contracts.placement import REASON_FUNNEL, NoOfferMatchReason
from marathon_core.model.ids import PathId, Timestamp

__all__ = ["LAST_OFFERS", "OfferStats", "QueueEntry", "RejectSummary"]

#: Offers per app whose outcome is kept for the summary (Marathon keeps a window too).
LAST_OFFERS = 100


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


@attrs.define
class OfferStats:
    """Offer-matching outcomes of one app."""

    processed: int = 0
    unused: int = 0
    last_unused_at: Timestamp | None = None
    last_used_at: Timestamp | None = None
    last_offers: collections.deque[frozenset[NoOfferMatchReason]] = attrs.field(
        factory=lambda: collections.deque(maxlen=LAST_OFFERS)
    )
    last_details: tuple[str, ...] = ()
    #: resource -> (needed, best offered, hostname)
    best: dict[str, tuple[float, float, str]] = attrs.field(factory=dict)
    not_launchable: str | None = None

    def used(self) -> None:
        self.processed += 1
        self.last_used_at = Timestamp.now()
        self.last_offers.append(frozenset())

    def rejected(
        self,
        reasons: frozenset[NoOfferMatchReason],
        details: tuple[str, ...],
        shortfalls: dict[str, tuple[float, float]],
        hostname: str,
    ) -> None:
        self.processed += 1
        self.unused += 1
        self.last_unused_at = Timestamp.now()
        self.last_offers.append(reasons)
        self.last_details = tuple(f"{hostname}: {d}" for d in details)
        for name, (needed, offered) in shortfalls.items():
            best = self.best.get(name)
            if best is None or best[0] != needed or offered > best[1]:
                self.best[name] = (needed, offered, hostname)

    def summary(self) -> tuple[RejectSummary, ...]:
        """Marathon's funnel: each offer counts once, at its first reason in funnel order."""
        remaining = list(self.last_offers)
        out: list[RejectSummary] = []
        for reason in REASON_FUNNEL:
            declined = [r for r in remaining if reason in r]
            out.append(RejectSummary(reason, len(declined), len(remaining)))
            remaining = [r for r in remaining if reason not in r]
        return tuple(out)

    def near_misses(self) -> tuple[str, ...]:
        return tuple(
            f"needs {needed:g} {name}, best offer had {offered:g} ({host})"
            for name, (needed, offered, host) in sorted(self.best.items())
        )
