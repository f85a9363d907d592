"""One kazoo client (one ZooKeeper session) reached through trio worker threads.

Every kazoo call runs in a trio worker thread (``trio.to_thread.run_sync`` with
the client's limiter) and uses kazoo's async API with an explicit timeout, so a
call never hangs longer than ``--zk_timeout`` even while ZooKeeper is
unreachable.  kazoo's connection listener only hops back with
``trio.from_thread.run_sync(..., trio_token=...)`` to record the state and wake
waiters; it never blocks on anything else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal, TypeVar

import attrs
import trio
from kazoo import exceptions as ke
from kazoo.client import KazooClient
from kazoo.protocol.states import Callback
from kazoo.retry import KazooRetry
from kazoo.security import make_digest_acl

from marathon_core.errors import StorageError, StorageUnavailableError
from marathon_core.redaction import register_secret
from marathon_core.state.zk.errors import KAZOO_ERRORS, map_kazoo_error
from marathon_core.state.zk.url import ZkUrl, parse_zk_url

__all__ = ["ZkClient", "ZkState", "ZkStatistics", "digest_acl", "open_zk"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Connection states as our code sees them (kazoo's KazooState values).
ZkState = Literal["CONNECTED", "SUSPENDED", "LOST"]


def digest_acl(url: ZkUrl) -> list[Any]:
    """The ACL of every znode made for ``url``'s identity: all permissions, nobody else's.

    Only the digest identity may read, write, list or re-ACL Marathon's nodes, so
    neither other tenants of the ensemble nor anonymous clients see apps or secrets
    in app definitions, nor forge leadership.
    """
    assert url.username is not None and url.password is not None
    return [make_digest_acl(url.username, url.password, all=True)]


@attrs.frozen
class ZkStatistics:
    """Counters of a :class:`ZkClient` since it connected."""

    state: ZkState
    calls: int
    state_changes: int
    #: ``trio.current_time()`` of the last state change.
    state_since: float


class ZkClient:
    """One kazoo client (one ZooKeeper session) shared by storage and election.

    Resource handling: use :func:`open_zk` (or :meth:`connect` and
    :meth:`aclose`).  kazoo's own threads run the connection; our calls run in
    trio worker threads limited by ``limiter``.  The connection listener hops
    into trio to record the state; :meth:`wait_state_change` lets the election
    react to it.
    """

    def __init__(
        self,
        client: Any,
        url: ZkUrl,
        *,
        timeout: float,
        session_timeout: float,
        limiter: trio.CapacityLimiter,
    ) -> None:
        """Use :meth:`connect`."""
        self._client = client
        self.url = url
        self.timeout = timeout
        self.session_timeout = session_timeout
        self._limiter = limiter
        self._token = trio.lowlevel.current_trio_token()
        self._state: ZkState = "CONNECTED" if client.connected else "SUSPENDED"
        self._state_since = trio.current_time()
        self._state_changes = 0
        self._changed = trio.Event()
        self._calls = 0
        self._closed = False
        self._watchers: dict[Callable[[], None], Callable[[Any], None]] = {}
        self._state_observers: list[Callable[[ZkState], None]] = []
        client.add_listener(self._listener)

    @classmethod
    async def connect(
        cls,
        url: str | ZkUrl,
        *,
        session_timeout: float = 10.0,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        threads: int = 4,
    ) -> ZkClient:
        """Connect to ZooKeeper; :class:`StorageUnavailableError` if it cannot be reached.

        ``session_timeout`` and ``timeout`` are seconds (``--zk_session_timeout``
        and ``--zk_timeout`` divided by 1000); ``timeout`` bounds every call.
        """
        zk_url = parse_zk_url(url) if isinstance(url, str) else url
        kwargs: dict[str, Any] = {}
        if zk_url.username is not None:
            assert zk_url.password is not None
            register_secret(zk_url.password)  # decoded: the URL's form is masked already
            # kazoo applies default_acl to every create, ensure_path (the parents of the
            # path included) and transaction create; the session authenticates first.
            kwargs["auth_data"] = [("digest", f"{zk_url.username}:{zk_url.password}")]
            kwargs["default_acl"] = digest_acl(zk_url)
        client = KazooClient(
            hosts=zk_url.hosts,
            timeout=session_timeout,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0),
            **kwargs,
        )
        limiter = trio.CapacityLimiter(threads)

        def start() -> None:
            try:
                client.start(timeout=connect_timeout if connect_timeout is not None else timeout)
            except BaseException:
                client.stop()
                client.close()
                raise

        try:
            await trio.to_thread.run_sync(start, limiter=limiter)
        except Exception as exc:
            raise StorageUnavailableError(
                f"cannot connect to ZooKeeper at {zk_url}: {type(exc).__name__}"
            ) from None
        return cls(
            client, zk_url, timeout=timeout, session_timeout=session_timeout, limiter=limiter
        )

    # -- the listener (kazoo's thread) -------------------------------------------

    def _listener(self, state: str) -> None:
        """Runs on kazoo's connection thread: hop into trio, never block otherwise."""
        with suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(self._record_state, str(state), trio_token=self._token)

    def hop(self, fn: Callable[[], None]) -> None:
        """From a kazoo thread (a watch): run the non-blocking ``fn`` in trio's thread.

        Dropped silently once the trio run is over.
        """
        with suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(fn, trio_token=self._token)

    def _record_state(self, state: str) -> None:
        if state not in ("CONNECTED", "SUSPENDED", "LOST"):  # pragma: no cover
            return
        self._state = state  # type: ignore[assignment]
        self._state_since = trio.current_time()
        self._state_changes += 1
        for observer in self._state_observers:
            observer(self._state)
        self._changed.set()
        self._changed = trio.Event()

    # -- public ------------------------------------------------------------------

    @property
    def state(self) -> ZkState:
        """The connection state as last reported by kazoo."""
        return self._state

    @property
    def state_since(self) -> float:
        """``trio.current_time()`` when :attr:`state` was entered."""
        return self._state_since

    async def wait_state_change(self) -> ZkState:
        """Wait for the next connection state change; the new state."""
        await self._changed.wait()
        return self._state

    def on_state_change(self, observer: Callable[[ZkState], None]) -> None:
        """Call ``observer(state)`` in trio on every connection state change."""
        self._state_observers.append(observer)

    def statistics(self) -> ZkStatistics:
        return ZkStatistics(self._state, self._calls, self._state_changes, self._state_since)

    def drain_watches(self, path: str) -> None:
        """In a worker thread: return once every watch notification for a change that
        ZooKeeper committed before this call has run (and hopped into trio).

        How: ``sync`` brings our server up to the ZooKeeper leader; the server sends
        notifications and replies in order, so once the read after it is answered,
        every earlier notification is queued on kazoo's single callback thread; a
        marker queued behind them runs last.  Watch callbacks block in :meth:`hop`
        until trio has run them, so trio has too.
        """
        kz = self._client
        self.wait(kz.sync_async(path))
        self.wait(kz.exists_async(path))
        done = threading.Event()
        kz.handler.dispatch_callback(Callback("watch", done.set, ()))
        if not done.wait(self.timeout):
            raise StorageUnavailableError("zookeeper: watch notifications did not drain")

    @property
    def kazoo(self) -> Any:
        """The kazoo client, for code in a worker thread reached through :meth:`call`."""
        return self._client

    async def call(self, fn: Callable[..., T], *args: Any, abandon_on_cancel: bool = False) -> T:
        """Run ``fn(*args)`` (which uses kazoo) in a worker thread; kazoo errors mapped.

        Nothing is sent while the session is disconnected: kazoo would queue the
        request and send it after reconnecting, so a write reported as failed
        could still apply much later.  A :class:`StorageUnavailableError` from a
        write that was sent means "outcome unknown" (ZooKeeper's own rule); the
        compare-and-set versions and the fence make a late apply harmless.
        Writes keep ``abandon_on_cancel=False``: a cancelled caller waits for the
        (bounded) call so "did it commit?" has an answer whenever ZooKeeper gives one.
        """
        if self._closed:
            raise StorageError("zookeeper client is closed")
        client = self._client

        def run() -> T:
            if not client.connected:
                raise StorageUnavailableError("zookeeper unavailable: not connected")
            try:
                return fn(*args)
            except KAZOO_ERRORS as exc:
                raise map_kazoo_error(exc) from None

        self._calls += 1
        return await trio.to_thread.run_sync(
            run, limiter=self._limiter, abandon_on_cancel=abandon_on_cancel
        )

    def wait(self, async_result: Any) -> Any:
        """In a worker thread: the result of a kazoo async call, bounded by ``timeout``."""
        return async_result.get(timeout=self.timeout)

    # -- node primitives for the election (absolute paths; no kazoo type leaves) ------

    def _watcher(self, fn: Callable[[], None]) -> Callable[[Any], None]:
        # One kazoo watcher per fn: kazoo keeps watchers in a set, so re-watching
        # the same path in a loop never piles them up.
        w = self._watchers.get(fn)
        if w is None:
            w = self._watchers[fn] = lambda event: self.hop(fn)
        return w

    async def ensure_path(self, path: str) -> None:
        await self.call(lambda: self.wait(self._client.ensure_path_async(path)))

    async def create_sequential(self, prefix: str, data: bytes, *, ephemeral: bool = True) -> str:
        """Create ``<prefix><seq>`` (parents included); its path."""

        def fn() -> str:
            parent = prefix.rsplit("/", 1)[0]
            if parent:
                self.wait(self._client.ensure_path_async(parent))
            path: str = self.wait(
                self._client.create_async(prefix, data, ephemeral=ephemeral, sequence=True)
            )
            return path

        return await self.call(fn)

    async def get_children(
        self, path: str, *, watch: Callable[[], None] | None = None
    ) -> list[str]:
        """Child names of ``path`` ([] if it does not exist); ``watch()`` runs in trio on change."""
        w = self._watcher(watch) if watch is not None else None

        def fn() -> list[str]:
            try:
                return list(self.wait(self._client.get_children_async(path, watch=w)))
            except ke.NoNodeError:
                return []

        return await self.call(fn, abandon_on_cancel=True)

    async def get_data(self, path: str) -> bytes | None:
        """The data of ``path``, None if it does not exist."""

        def fn() -> bytes | None:
            try:
                data: bytes = self.wait(self._client.get_async(path))[0]
            except ke.NoNodeError:
                return None
            return data

        return await self.call(fn, abandon_on_cancel=True)

    async def exists(self, path: str, *, watch: Callable[[], None] | None = None) -> bool:
        """Whether ``path`` exists; ``watch()`` runs in trio when it is created/changed/deleted."""
        w = self._watcher(watch) if watch is not None else None

        def fn() -> bool:
            return self.wait(self._client.exists_async(path, watch=w)) is not None

        return await self.call(fn, abandon_on_cancel=True)

    async def delete(self, path: str) -> bool:
        """Delete ``path``; False if it did not exist."""

        def fn() -> bool:
            try:
                self.wait(self._client.delete_async(path))
            except ke.NoNodeError:
                return False
            return True

        return await self.call(fn)

    async def aclose(self) -> None:
        """Close the session (its ephemeral nodes go at once); idempotent."""
        if self._closed:
            return
        self._closed = True
        client = self._client

        def stop() -> None:
            try:
                client.stop()
            finally:
                client.close()

        with trio.CancelScope(shield=True), trio.move_on_after(self.timeout + 5):
            try:
                await trio.to_thread.run_sync(stop, limiter=self._limiter)
            except Exception as exc:  # closing must not raise
                log.warning("closing the ZooKeeper client: %s", exc)
        client.remove_listener(self._listener)


@asynccontextmanager
async def open_zk(
    url: str | ZkUrl, *, session_timeout: float = 10.0, timeout: float = 10.0
) -> AsyncIterator[ZkClient]:
    """A connected :class:`ZkClient`, closed on the way out."""
    zk = await ZkClient.connect(url, session_timeout=session_timeout, timeout=timeout)
    try:
        yield zk
    finally:
        await zk.aclose()
