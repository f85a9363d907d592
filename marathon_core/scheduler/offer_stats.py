"""Offer-matching outcomes per app, kept by the scheduler for its ``/v2/queue`` entries
(:class:`~marathon_core.contracts.queue.QueueEntry`)."""

from __future__ import annotations

import collections

import attrs

from marathon_core.contracts.placement import REASON_FUNNEL, NoOfferMatchReason
from marathon_core.contracts.queue import RejectSummary
from marathon_core.model.ids import Timestamp

__all__ = ["LAST_OFFERS", "OfferStats"]

#: Offers per app whose outcome is kept for the summary (Marathon keeps a window too).
LAST_OFFERS = 100


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
