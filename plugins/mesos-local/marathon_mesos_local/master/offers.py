"""The allocator: offers, decline filters, offer timeouts (Mesos's hierarchical DRF
allocator, reduced to what one machine needs).

Each agent's free resources go to the eligible framework with the least dominant
share, one offer per agent per run. Runs happen every ``--allocation_interval`` and,
in between, for the agents whose resources changed (see
:class:`~.model.AllocationTrigger`). REVIVE, SUPPRESS and DECLINE are calls on the
allocator; so are discarding and rescinding offers.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import Iterable, Mapping
from typing import Any

import trio

from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.model import (
    MIN_CPUS,
    MIN_MEM,
    Agent,
    AllocationTrigger,
    Framework,
    MasterOptions,
    Offer,
)
from marathon_mesos_local.messages import mesos_id
from marathon_mesos_local.resources import Resources

__all__ = ["Allocator", "offer_json"]

log = logging.getLogger(__name__)

#: Pause after an allocation run, so that a burst of changes is allocated together.
ALLOCATION_BATCH = 0.002
#: ``Filters.refuse_seconds`` default and cap (365 days).
DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0
#: The resources whose shares DRF compares.
SHARE_NAMES = ("cpus", "mem", "disk")


class Allocator:
    """Offers the agents' free resources to the frameworks, fairly."""

    def __init__(
        self, books: Books, trigger: AllocationTrigger, options: MasterOptions, master_id: str
    ) -> None:
        self.books = books
        self.trigger = trigger
        self.options = options
        self._master_id = master_id
        self._offer_numbers = itertools.count()
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        """Allocate every agent each ``allocation_interval`` and, in between, the agents
        whose resources changed (batched: changes arriving together share one run)."""
        async with trio.open_nursery() as nursery:  # offer timers
            self._nursery = nursery
            while True:
                self.allocate(await self.trigger.next_run(self.options.allocation_interval))
                await trio.sleep(ALLOCATION_BATCH)

    # -- calls -------------------------------------------------------------------------

    def revive(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """REVIVE: the roles (default: all) are offered again, their filters gone."""
        roles = call.get("revive", {}).get("roles") or framework.roles
        for role in roles:
            framework.suppressed.discard(role)
            self.clear_filters(framework, role)
        self.trigger.request()

    def suppress(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """SUPPRESS: no more offers for the roles (default: all) until REVIVE."""
        roles = call.get("suppress", {}).get("roles") or framework.roles
        framework.suppressed.update(r for r in roles if r in framework.roles)

    def clear_filters(self, framework: Framework, role: str) -> None:
        for key in [k for k in framework.filters if k[0] == role]:
            del framework.filters[key]

    def decline(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """DECLINE: the offers' resources go back, refused for ``refuse_seconds``."""
        decline = call["decline"]
        refuse = self.refuse_seconds(decline.get("filters"))
        for offer_id in decline.get("offer_ids", []):
            offer = framework.offers.get(offer_id["value"])
            if offer is None:
                continue
            self.discard(framework, offer)
            self.add_filter(framework, offer.role, offer.agent_id, offer.resources, refuse)

    @staticmethod
    def refuse_seconds(filters: Mapping[str, Any] | None) -> float:
        seconds = (filters or {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS)
        if math.isnan(seconds) or seconds < 0:
            return DEFAULT_REFUSE_SECONDS
        return float(min(seconds, MAX_REFUSE_SECONDS))

    def add_filter(
        self, framework: Framework, role: str, agent_id: str, resources: Resources, seconds: float
    ) -> None:
        if seconds <= 0 or resources.is_empty():
            return
        framework.filters[(role, agent_id)] = (resources, trio.current_time() + seconds)

    # -- offers ------------------------------------------------------------------------

    def discard(self, framework: Framework, offer: Offer) -> None:
        """Return an offer's resources to its agent without telling the framework."""
        if framework.offers.pop(offer.id, None) is None:
            return
        if offer.timer is not None:
            offer.timer.cancel()
        agent = self.books.agents.get(offer.agent_id)
        if agent is not None:
            agent.allocated = (agent.allocated - offer.resources).pruned()
        self.trigger.request(offer.agent_id)

    def rescind(self, framework: Framework, offer: Offer) -> None:
        self.discard(framework, offer)
        framework.send({"type": "RESCIND", "rescind": {"offer_id": mesos_id(offer.id)}})

    def rescind_offers_on(self, agent_id: str) -> None:
        """Rescind every offer of an agent (it is replaced or gone)."""
        for framework in self.books.frameworks.values():
            for offer in [o for o in framework.offers.values() if o.agent_id == agent_id]:
                self.rescind(framework, offer)

    # -- allocation ------------------------------------------------------------------

    def _held(self, framework: Framework) -> list[float]:
        """cpus, mem and disk a framework holds in tasks, executors and offers."""
        held = [0.0, 0.0, 0.0]
        names = SHARE_NAMES
        for holding in itertools.chain(
            (t.resources for t in framework.tasks.values() if not t.freed),
            (e.resources for e in framework.executors.values()),
            (o.resources for o in framework.offers.values()),
        ):
            scalars = holding.scalars
            for i, name in enumerate(names):
                held[i] += scalars.get(name, 0.0)
        return held

    @staticmethod
    def _share(held: list[float], totals: list[float]) -> float:
        """Dominant share of the cluster (DRF)."""
        return max((h / t for h, t in zip(held, totals, strict=True) if t > 0), default=0.0)

    def allocate(self, agent_ids: Iterable[str] | None = None) -> None:
        """Offer each agent's free resources to the eligible framework with the least share.

        ``agent_ids`` limits the run to those agents (default: every agent).
        """
        now = trio.current_time()
        totals = [0.0, 0.0, 0.0]
        for agent in self.books.agents.values():
            for i, name in enumerate(SHARE_NAMES):
                totals[i] += agent.total.scalars.get(name, 0.0)
        eligible = [
            f
            for f in self.books.frameworks.values()
            if f.stream is not None and any(r not in f.suppressed for r in f.roles)
        ]
        if not eligible:
            return
        # With one framework its share decides nothing: skip summing its tasks.
        held = {f.id: self._held(f) if len(eligible) > 1 else [0.0] * 3 for f in eligible}
        batches: dict[str, list[dict[str, Any]]] = {}
        if agent_ids is None:
            agents = list(self.books.agents.values())
        else:
            agents = [self.books.agents[i] for i in agent_ids if i in self.books.agents]
        random.shuffle(agents)
        for agent in agents:
            free = agent.free
            if free.scalar("cpus") < MIN_CPUS and free.scalar("mem") < MIN_MEM:
                continue
            candidates: list[tuple[float, str, Framework, str]] = []
            for framework in eligible:
                share = self._share(held[framework.id], totals)
                for role in framework.roles:
                    if role in framework.suppressed:
                        continue
                    refused = framework.filters.get((role, agent.id))
                    if refused is not None:
                        if refused[1] <= now:
                            del framework.filters[(role, agent.id)]
                        elif refused[0].contains(free):
                            continue
                    candidates.append((share, framework.id, framework, role))
            if not candidates:
                continue
            _, _, framework, role = min(candidates, key=lambda c: (c[0], c[1]))
            offer = Offer(
                f"{self._master_id}-O{next(self._offer_numbers)}",
                framework.id,
                agent.id,
                role,
                free,
            )
            framework.offers[offer.id] = offer
            mine = held[framework.id]
            for i, name in enumerate(SHARE_NAMES):
                mine[i] += free.scalars.get(name, 0.0)
            if self.options.offer_timeout is not None and self._nursery is not None:
                offer.timer = trio.CancelScope()
                self._nursery.start_soon(self._offer_timer, framework, offer)
            agent.allocated = agent.allocated + free
            batches.setdefault(framework.id, []).append(offer_json(framework, agent, offer))
        for framework_id, offers in batches.items():
            self.books.frameworks[framework_id].send(
                {"type": "OFFERS", "offers": {"offers": offers}}
            )

    async def _offer_timer(self, framework: Framework, offer: Offer) -> None:
        """Rescind an offer not used within ``--offer_timeout`` (no filter is set)."""
        assert offer.timer is not None and self.options.offer_timeout is not None
        with offer.timer:
            await trio.sleep(self.options.offer_timeout)
            if framework.offers.get(offer.id) is offer:
                log.info("offer %s of framework %s timed out", offer.id, framework.id)
                offer.timer = None
                self.rescind(framework, offer)


def offer_json(framework: Framework, agent: Agent, offer: Offer) -> dict[str, Any]:
    """An offer as its framework gets it (``mesos.v1.Offer``)."""
    refinement = "RESERVATION_REFINEMENT" in framework.capabilities
    return {
        "id": mesos_id(offer.id),
        "framework_id": mesos_id(framework.id),
        "agent_id": mesos_id(agent.id),
        "hostname": agent.hostname,
        "url": {
            "scheme": "http",
            "address": {"hostname": agent.hostname, "ip": agent.hostname, "port": agent.port},
            "path": "/slave(1)",
        },
        "allocation_info": {"role": offer.role},
        "resources": offer.resources.to_json(allocation_role=offer.role, with_role=not refinement),
        "attributes": agent.attributes,
        "executor_ids": [
            mesos_id(executor_id)
            for framework_id, executor_id in agent.executors
            if framework_id == framework.id
        ],
    }
