"""Leader election: ZooKeeper among any number of ``marathon`` processes, or solo.

:meth:`LeaderElection.run` is the service: it runs ``lead`` (the
leadership-scoped work) inside a cancel scope while this process leads and
cancels it the moment leadership ends, so work only a leader may do lives in
``lead`` and nothing else needs an "am I leader?" flag.

ZooKeeper (:class:`ZkElection`): the ZooKeeper recipe with ephemeral
sequential nodes ``<zk path>/leader-curator/latch-<seq>`` holding the
participant id (``host:port``); the lowest sequence leads, as in Curator's
LeaderLatch that Marathon uses.  Leadership ends when

* our node disappears (session expired, or someone deleted it),
* the session is LOST, or SUSPENDED (disconnected) for longer than
  ``suspend_grace``: kazoo notices a silent server only after 2/3 of the
  session timeout, and the ensemble expires the session at the full timeout,
  so the grace (default a quarter of the session timeout) ends our work
  before another process can be elected,
* :meth:`abdicate` is called or ``lead`` returns.

After leadership ends the process deletes its node (if the session still
lives) and joins again at the back, so another contender takes over.

Fencing: :meth:`fence` gives the ops every state write carries
(``StateStore.open(..., fence=election.fence)``): a check that our election
node still exists, in the same ZooKeeper transaction as the write.  A former
leader's write therefore fails with :class:`FencedWriteError` even when it
has not noticed yet that it lost (a GC pause, a partition): the node is gone
once its session expired.

Solo (:class:`SoloElection`, no ``--zk`` or ``--disable_ha``): leads at once.

Threads: kazoo's watches only hop into trio (``trio.from_thread.run_sync``
with the client's token) to set an event; every ZooKeeper call goes through
:class:`~marathon_core.state.zk.client.ZkClient`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from marathon_core.errors import FencedWriteError, StorageError, StorageUnavailableError
from marathon_core.state.storage import Op
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.transaction import ZnodeCheck

__all__ = [
    "ElectionStatistics",
    "LeaderElection",
    "SoloElection",
    "ZkElection",
    "election_path",
]

log = logging.getLogger(__name__)

#: Leadership-scoped work: ``await lead(*args)``; cancelled when leadership ends.
Lead = Callable[..., Awaitable[None]]

#: The latch directory below the ``--zk`` path (Marathon's Curator latch path).
LATCH_DIR = "leader-curator"
LATCH_PREFIX = "latch-"


def election_path(zk_path: str) -> str:
    """The election directory for a ``--zk`` path."""
    return f"{zk_path.rstrip('/')}/{LATCH_DIR}"


@attrs.frozen
class ElectionStatistics:
    """Where the election stands."""

    participant_id: str
    is_leader: bool
    leader_id: str | None
    #: Times this process became leader.
    terms: int
    #: Contenders known at the last look (ZooKeeper) or 1 (solo).
    contenders: int


class LeaderElection(abc.ABC):
    """The election API the service tree and the REST plugin use."""

    def __init__(self, participant_id: str) -> None:
        self.participant_id = participant_id
        self._leader_id: str | None = None
        self._is_leader = False
        self._terms = 0
        self._contenders = 0

    @abc.abstractmethod
    async def run(
        self, lead: Lead, *args: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Contend forever; run ``lead(*args)`` while leading, cancel it when that ends.

        Ready (``task_status.started()``) once this process takes part.  An
        exception from ``lead`` propagates (let it crash); a normal return
        abdicates.
        """

    @abc.abstractmethod
    async def abdicate(self) -> bool:
        """Give up leadership (``DELETE /v2/leader``); False if not leading.

        Returns once the leadership-scoped work is cancelled and another
        contender can take over.
        """

    @abc.abstractmethod
    def fence(self) -> list[Op]:
        """Ops that make a state write conditional on still leading.

        Raises :class:`FencedWriteError` at once when this process does not lead.
        """

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    @property
    def leader_id(self) -> str | None:
        """The leader's ``host:port`` (for ``/v2/leader`` and the standby proxy), None if none."""
        return self._leader_id

    def statistics(self) -> ElectionStatistics:
        return ElectionStatistics(
            self.participant_id, self._is_leader, self._leader_id, self._terms, self._contenders
        )

    def _set(self, *, leader_id: str | None, is_leader: bool) -> None:
        if (leader_id, is_leader) == (self._leader_id, self._is_leader):
            return
        if is_leader and not self._is_leader:
            self._terms += 1
            log.info("%s is now the leader", self.participant_id)
        elif self._is_leader and not is_leader:
            log.warning("%s is no longer the leader", self.participant_id)
        self._leader_id, self._is_leader = leader_id, is_leader

    async def _lead_until(self, lead: Lead, args: tuple[Any, ...], ended: trio.Event) -> None:
        """Run ``lead`` until ``ended`` is set (or ``lead`` returns, which sets it)."""

        async def leading() -> None:
            await lead(*args)
            log.info("leadership-scoped work returned: abdicating")
            ended.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(leading)
            await ended.wait()
            nursery.cancel_scope.cancel()


class SoloElection(LeaderElection):
    """The only participant: leads at once, and again right after an abdication."""

    def __init__(self, participant_id: str) -> None:
        super().__init__(participant_id)
        self._ended: trio.Event | None = None
        self._stepped_down = trio.Event()

    async def run(
        self, lead: Lead, *args: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._contenders = 1
        task_status.started()
        while True:
            ended = self._ended = trio.Event()
            self._set(leader_id=self.participant_id, is_leader=True)
            try:
                await self._lead_until(lead, args, ended)
            finally:
                self._ended = None
                self._set(leader_id=None, is_leader=False)
                self._stepped_down.set()
                self._stepped_down = trio.Event()

    async def abdicate(self) -> bool:
        ended = self._ended
        if ended is None:
            return False
        stepped_down = self._stepped_down
        ended.set()
        await stepped_down.wait()
        return True

    def fence(self) -> list[Op]:
        if not self._is_leader:
            raise FencedWriteError(f"{self.participant_id} is not the leader")
        return []


class ZkElection(LeaderElection):
    """Election among processes sharing a ZooKeeper path."""

    def __init__(
        self,
        zk: ZkClient,
        participant_id: str,
        *,
        path: str | None = None,
        suspend_grace: float | None = None,
    ) -> None:
        super().__init__(participant_id)
        self.zk = zk
        self.path = path if path is not None else election_path(zk.url.path)
        #: Seconds a leader may stay disconnected before its work is cancelled.
        self.suspend_grace = suspend_grace if suspend_grace is not None else zk.session_timeout / 4
        self._leading_node: str | None = None
        self._poke = trio.Event()
        self._abdicate = False
        self._stepped_down = trio.Event()
        #: Our former nodes that could not be deleted yet (disconnected).
        self._stale: set[str] = set()

    # -- ZooKeeper --------------------------------------------------------------------------

    def _wake(self) -> None:
        """Run in trio by a ZooKeeper watch: wake the loop."""
        self._poke.set()

    async def _join(self) -> str:
        """Create our latch node; its absolute path."""
        node = await self.zk.create_sequential(
            f"{self.path}/{LATCH_PREFIX}", self.participant_id.encode()
        )
        log.info("%s joined the election as %s", self.participant_id, node)
        return node

    async def _look(self) -> tuple[list[str], str | None]:
        """Contenders (lowest first; the directory is watched) and the leader's id."""
        names = await self.zk.get_children(self.path, watch=self._wake)
        nodes = sorted(
            (n for n in names if n.startswith(LATCH_PREFIX)),
            key=lambda n: n[len(LATCH_PREFIX) :],
        )
        for n in nodes:  # the lowest may vanish between the two reads
            data = await self.zk.get_data(f"{self.path}/{n}")
            if data is not None:
                return nodes, data.decode(errors="replace")
        return nodes, None

    async def _leave(self, node: str) -> None:
        """Delete our node if the session still holds it (best effort, bounded)."""
        with trio.CancelScope(shield=True), trio.move_on_after(self.zk.timeout + 1):
            try:
                await self.zk.delete(node)
            except StorageError as exc:
                # If the session survives, the node would keep its place ahead of the
                # one we create next and we would follow ourselves: delete it first.
                log.info("could not delete election node %s yet (%s)", node, exc)
                self._stale.add(node)

    async def _wait_connected(self) -> None:
        while self.zk.state != "CONNECTED":
            await self.zk.wait_state_change()

    # -- the loop ----------------------------------------------------------------------------

    async def run(
        self, lead: Lead, *args: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forward_states)
            while True:
                try:
                    await self._wait_connected()
                    for stale in sorted(self._stale):
                        await self.zk.delete(stale)
                        self._stale.discard(stale)
                    node = await self._join()
                except StorageUnavailableError as exc:
                    log.warning("cannot join the election: %s", exc)
                    await trio.sleep(0.2)
                    continue
                if not started:
                    task_status.started()
                    started = True
                try:
                    await self._contend(node, lead, args)
                finally:
                    await self._leave(node)
                    self._set(leader_id=self._leader_id, is_leader=False)
                    self._abdicate = False
                    self._stepped_down.set()
                    self._stepped_down = trio.Event()

    async def _forward_states(self) -> None:
        while True:
            await self.zk.wait_state_change()
            self._poke.set()

    async def _contend(self, node: str, lead: Lead, args: tuple[Any, ...]) -> None:
        """Until our node is gone or we stop leading: follow, or lead."""
        name = node.rsplit("/", 1)[1]
        while True:
            self._poke = poked = trio.Event()
            if self.zk.state == "LOST":
                return
            try:
                nodes, leader_id = await self._look()
            except StorageUnavailableError:
                self._set(leader_id=None, is_leader=False)
                await trio.sleep(0.05)  # kazoo may know before our recorded state does
                await self._wait_connected()
                continue
            self._contenders = len(nodes)
            if name not in nodes:
                log.warning("election node %s is gone (session expired?): joining again", node)
                return
            if nodes[0] == name:
                await self._lead(node, lead, args)
                return  # whatever ended it, step down and join again at the back
            self._set(leader_id=leader_id, is_leader=False)
            await poked.wait()

    async def _lead(self, node: str, lead: Lead, args: tuple[Any, ...]) -> None:
        ended = trio.Event()
        self._leading_node = node
        self._set(leader_id=self.participant_id, is_leader=True)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._lead_until, lead, args, ended)
                why = await self._watch_leadership(node, ended)
                log.warning("%s stops leading: %s", self.participant_id, why)
                # Not the leader before the work is cancelled: a write from its
                # cleanup must already fail the fence.
                self._set(leader_id=None, is_leader=False)
                ended.set()
        finally:
            self._leading_node = None
            self._set(leader_id=None, is_leader=False)

    async def _watch_leadership(self, node: str, ended: trio.Event) -> str:
        """Return (with the reason) once this process must stop leading."""
        while True:
            self._poke = poked = trio.Event()
            if ended.is_set():
                return "the leadership-scoped work returned"
            if self._abdicate:
                return "abdicated"
            state = self.zk.state
            if state == "LOST":
                return "ZooKeeper session lost"
            if state == "SUSPENDED":
                deadline = self.zk.state_since + self.suspend_grace
                with trio.move_on_at(deadline):
                    while self.zk.state == "SUSPENDED" and not self._abdicate:
                        await self.zk.wait_state_change()
                if self.zk.state == "SUSPENDED":
                    return f"disconnected from ZooKeeper for more than {self.suspend_grace:.1f} s"
                continue
            try:
                if not await self.zk.exists(node, watch=self._wake):
                    return "election node deleted"
            except StorageUnavailableError:
                await trio.sleep(0.05)  # the state change is handled above once it arrives
                continue
            await poked.wait()

    # -- API -----------------------------------------------------------------------------------

    async def abdicate(self) -> bool:
        if not self._is_leader:
            return False
        stepped_down = self._stepped_down
        self._abdicate = True
        self._poke.set()
        await stepped_down.wait()
        return True

    def fence(self) -> list[Op]:
        node = self._leading_node
        if node is None or not self._is_leader:
            raise FencedWriteError(f"{self.participant_id} is not the leader")
        return [ZnodeCheck(node, 0)]
