"""ZooKeeper storage through kazoo: the ``--zk`` backend of the storage interface.

kazoo stays in this module (conventions #22, #23).  Every kazoo call runs in a
trio worker thread (``trio.to_thread.run_sync`` with the client's limiter) and
uses kazoo's async API with an explicit timeout, so a call never hangs longer
than ``--zk_timeout`` even while ZooKeeper is unreachable.  kazoo's connection
listener only hops back with ``trio.from_thread.run_sync(..., trio_token=...)``
to record the state and wake waiters; it never blocks on anything else.  No
kazoo type or exception leaves the module.

Layout below ``<zk path>/state`` (Marathon keeps its state there too)::

    <dir>/<name>#          the value of key ``<dir>/<name>`` (header byte + data)
    <dir>/<name>           a directory: an inner node of some longer key
    #blobs/<key>@<id>@<n>  chunk n of a value too large for one request

Why values and directories are different znodes: the interface allows a key to
hold a value and have children, and a node's version must start at 0 whenever
a key is created, which could not hold if a directory node later took a value.
``#`` is not a legal key character, so names never collide.

Transactions: :meth:`ZkStorage.commit` sends one ZooKeeper ``multi``.  It
creates missing directory nodes in front of the ops that need them and deletes
directories that end up empty at its end; when a directory loses entries but
keeps others it also checks that one kept sibling still exists, so two
concurrent deletes can never strand an empty directory.  If the tree changed
underneath (a directory created or removed concurrently), the transaction
fails as a whole and is planned again; only the caller's own ops produce
:class:`VersionConflictError` / :class:`NotFoundError`.

Large values: above ``compress_threshold`` (64 KiB, Marathon's
``--zk_compression_threshold``) a value is zlib-compressed; if it still does not
fit in one request, or the whole transaction would exceed ZooKeeper's 1 MiB
request limit (``jute.maxbuffer``), values move into chunk nodes written before
the transaction, and the transaction stores a small manifest (and checks that
every chunk exists).  Readers see old or new value, never a mix; chunks no
longer referenced are swept after later commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote

import attrs
import trio
from kazoo import exceptions as ke
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import Callback
from kazoo.retry import KazooRetry
from kazoo.security import make_digest_acl

from marathon_core.errors import (
    ConfigError,
    FencedWriteError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    VersionConflictError,
    WriteTooLargeError,
)
from marathon_core.state.readcache import ReadCache
from marathon_core.state.storage import (
    Check,
    Create,
    Delete,
    Entry,
    Op,
    Storage,
    Update,
    parent_of,
    validate_key,
)

__all__ = [
    "FencedWriteError",
    "ZkClient",
    "ZkState",
    "ZkStatistics",
    "ZkStorage",
    "ZkUrl",
    "ZnodeCheck",
    "open_zk",
    "parse_zk_url",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Connection states as our code sees them (kazoo's KazooState values).
ZkState = Literal["CONNECTED", "SUSPENDED", "LOST"]

#: Port of a ``--zk`` host given without one.
DEFAULT_PORT = 2181

#: Marker of a value node (``a/b`` -> ``a/b#``); not a legal key character.
VALUE_SUFFIX = "#"
#: Directory of value chunks under the storage root.
BLOBS = "#blobs"

#: Values above this many bytes are compressed (Marathon's ``--zk_compression_threshold``).
COMPRESS_THRESHOLD = 64 * 1024
#: Bytes one request may carry; ZooKeeper's ``jute.maxbuffer`` is 1 MiB - 1 and the
#: server drops the connection of a larger request (measured: 1.1 MB -> ConnectionLoss).
MAX_REQUEST = 1_000_000
#: Data of one chunk node.
CHUNK_SIZE = 900_000
#: Estimated request bytes per op besides path and data (header, ACL, flags).
OP_OVERHEAD = 64
#: Keys read per pipelined round; bounds what is outstanding at once.
READ_BATCH = 2000
#: Plans of a commit before a tree that keeps changing is reported as a conflict.
STRUCTURE_ATTEMPTS = 10

_RAW, _ZLIB, _BLOB = b"\x00", b"\x01", b"\x02"


@attrs.frozen
class ZnodeCheck(Check):
    """A fencing check on an absolute znode (``key``), e.g. the leader's election node.

    Only :class:`ZkStorage` accepts it; it fails the whole commit with
    :class:`FencedWriteError` if the node is gone or at another version.
    """


# -- URLs ----------------------------------------------------------------------------


@attrs.frozen
class ZkUrl:
    """A parsed ``zk://[user:pass@]host:port[,host:port...]/path``."""

    hosts: str
    path: str
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        auth = f"{self.username}:***@" if self.username is not None else ""
        return f"zk://{auth}{self.hosts}{self.path}"


def parse_zk_url(url: str) -> ZkUrl:
    """Parse ``--zk``; :class:`ConfigError` with the reason when it is malformed."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"--zk {url!r}: {why}; expected zk://host:port[,host:port...]/path")

    if not url.startswith("zk://"):
        raise bad("the scheme must be zk://")
    rest = url[len("zk://") :]
    slash = rest.find("/")
    if slash < 0:
        raise bad("the path is missing")
    authority, path = rest[:slash], rest[slash:]
    username = password = None
    if "@" in authority:
        cred, authority = authority.rsplit("@", 1)
        if ":" not in cred:
            raise bad("credentials must be user:password")
        username, password = (unquote(p) for p in cred.split(":", 1))
    if not authority:
        raise bad("no host given")
    hosts = []
    for hp in authority.split(","):
        host, sep, port = hp.rpartition(":")
        if not sep and hp and "[" not in hp:
            host, port = hp, str(DEFAULT_PORT)  # ZooKeeper's client port, as its clients assume
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise bad(f"{hp!r} is not host:port")
        hosts.append(f"{host}:{int(port)}")
    path = path.rstrip("/")
    if not path:
        raise bad("the path must not be /")
    for seg in path[1:].split("/"):
        if seg in ("", ".", "..") or "\x00" in seg:
            raise bad(f"bad path segment {seg!r}")
    return ZkUrl(",".join(hosts), path, username, password)


# -- the client: one kazoo session, reached through trio threads -----------------------


@attrs.frozen
class ZkStatistics:
    """Counters of a :class:`ZkClient` since it connected."""

    state: ZkState
    calls: int
    state_changes: int
    #: ``trio.current_time()`` of the last state change.
    state_since: float


def _map_error(exc: BaseException) -> StorageError | NotFoundError:
    """The core error for a kazoo error (conventions #23)."""
    if isinstance(exc, ke.NoNodeError):
        return NotFoundError(f"zookeeper: no node ({exc})")
    if isinstance(exc, ke.BadVersionError | ke.NodeExistsError | ke.NotEmptyError):
        return VersionConflictError(f"zookeeper: {type(exc).__name__}")
    if isinstance(
        exc,
        KazooTimeoutError
        | ke.ConnectionLoss
        | ke.SessionExpiredError
        | ke.OperationTimeoutError
        | ke.ZookeeperStoppedError
        | ke.ConnectionDropped,
    ):
        return StorageUnavailableError(f"zookeeper unavailable: {type(exc).__name__}")
    return StorageError(f"zookeeper: {type(exc).__name__}: {exc}")


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
            kwargs["auth_data"] = [("digest", f"{zk_url.username}:{zk_url.password}")]
            kwargs["default_acl"] = [make_digest_acl(zk_url.username, zk_url.password, all=True)]
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
            except (ke.KazooException, KazooTimeoutError) as exc:
                raise _map_error(exc) from None

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


# -- value encoding ----------------------------------------------------------------------


def _encode_inline(value: bytes, threshold: int) -> bytes:
    if len(value) > threshold:
        packed = zlib.compress(value, 1)
        if len(packed) < len(value):
            return _ZLIB + packed
    return _RAW + value


def _decode_inline(data: bytes, key: str) -> bytes:
    head, body = data[:1], data[1:]
    if head == _RAW:
        return body
    if head == _ZLIB:
        try:
            return zlib.decompress(body)
        except zlib.error:
            raise StorageError(f"zookeeper: damaged compressed value at {key!r}") from None
    raise StorageError(f"zookeeper: unknown value encoding {head!r} at {key!r}")


@attrs.frozen
class _Manifest:
    id: str
    chunks: int
    size: int
    compressed: bool
    sha256: str

    def dump(self) -> bytes:
        return _BLOB + json.dumps(attrs.asdict(self), separators=(",", ":")).encode()

    @classmethod
    def load(cls, data: bytes, key: str) -> _Manifest:
        try:
            return cls(**json.loads(data[1:]))
        except (ValueError, TypeError):
            raise StorageError(f"zookeeper: damaged chunk manifest at {key!r}") from None


@attrs.define
class _Blob:
    """A value stored in chunk nodes, written before the transaction that references it."""

    key: str
    manifest: _Manifest
    payload: bytes

    def chunk_name(self, i: int) -> str:
        return f"{quote(self.key, safe='')}@{self.manifest.id}@{i}"


def _make_blob(key: str, value: bytes, threshold: int) -> _Blob:
    payload, compressed = value, False
    if len(value) > threshold:
        packed = zlib.compress(value, 1)
        if len(packed) < len(value):
            payload, compressed = packed, True
    chunks = max(1, math.ceil(len(payload) / CHUNK_SIZE))
    manifest = _Manifest(
        uuid.uuid4().hex, chunks, len(payload), compressed, hashlib.sha256(payload).hexdigest()
    )
    return _Blob(key, manifest, payload)


# -- the storage -------------------------------------------------------------------------


class _Retry(StorageError):
    """The tree changed under a planned transaction: plan again (never escapes)."""


@attrs.define
class _TxOp:
    """One op of the ZooKeeper transaction and what it stands for."""

    kind: Literal["user", "dir-create", "dir-delete", "keep", "chunk", "fence"]
    method: str  # create, set_data, delete, check
    path: str
    data: bytes = b""
    version: int = -1
    index: int = -1  # position in the caller's ops for kind "user"

    def size(self) -> int:
        return len(self.path) + len(self.data) + OP_OVERHEAD


class ZkStorage(Storage):
    """A :class:`Storage` in ZooKeeper below ``<zk path>/state``.

    With ``cache_reads`` every value and child list read is kept in a
    :class:`ReadCache` and watched; a watch that fires, a commit of this process
    and any connection state change drop what they may have changed.  Reads are
    then as fresh as ZooKeeper's own (a session sees its own writes; other
    sessions' writes arrive with their notifications), and :meth:`sync` waits for
    every notification of what was committed before it.
    """

    def __init__(
        self,
        zk: ZkClient,
        base: str,
        *,
        owns_client: bool = False,
        compress_threshold: int = COMPRESS_THRESHOLD,
        cache_reads: bool = False,
    ) -> None:
        """Use :meth:`open` (shared client) or :meth:`connect` (own client)."""
        self.zk = zk
        self.base = base.rstrip("/")
        self._owns_client = owns_client
        self._threshold = compress_threshold
        self._closed = False
        self._cache = ReadCache() if cache_reads else None
        if (cache := self._cache) is not None:
            # Notifications may be lost across a disconnection: forget everything.
            zk.on_state_change(lambda _state: cache.clear())
        #: Directory keys known to exist (a hint: a wrong guess only costs a re-plan).
        self._dirs: set[str] = set()
        #: Chunks may exist that no value references any more: sweep after commits.
        self._maybe_blobs = False
        #: Blob ids written by commits still in flight (never swept).
        self._inflight: set[str] = set()

    @classmethod
    async def open(
        cls,
        zk: ZkClient,
        *,
        path: str | None = None,
        compress_threshold: int = COMPRESS_THRESHOLD,
        cache_reads: bool = False,
    ) -> ZkStorage:
        """Storage on a shared client, below ``path`` (default ``<zk url path>/state``)."""
        base = path if path is not None else f"{zk.url.path}/state"
        storage = cls(zk, base, compress_threshold=compress_threshold, cache_reads=cache_reads)
        await storage._prepare()
        return storage

    @classmethod
    async def connect(
        cls,
        url: str | ZkUrl,
        *,
        session_timeout: float = 10.0,
        timeout: float = 10.0,
        compress_threshold: int = COMPRESS_THRESHOLD,
        cache_reads: bool = False,
    ) -> ZkStorage:
        """Storage with its own client, closed by :meth:`aclose`."""
        zk = await ZkClient.connect(url, session_timeout=session_timeout, timeout=timeout)
        try:
            storage = cls(
                zk,
                f"{zk.url.path}/state",
                owns_client=True,
                compress_threshold=compress_threshold,
                cache_reads=cache_reads,
            )
            await storage._prepare()
        except BaseException:
            await zk.aclose()
            raise
        return storage

    async def _prepare(self) -> None:
        blobs = f"{self.base}/{BLOBS}"

        def fn() -> int:
            self.zk.wait(self.zk.kazoo.ensure_path_async(blobs))
            return len(self.zk.wait(self.zk.kazoo.get_children_async(blobs)))

        self._maybe_blobs = await self.zk.call(fn) > 0

    # -- paths -----------------------------------------------------------------------

    def _dir(self, prefix: str) -> str:
        return f"{self.base}/{prefix}" if prefix else self.base

    def _value(self, key: str) -> str:
        return f"{self.base}/{key}{VALUE_SUFFIX}"

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("zookeeper storage is closed")

    # -- reads -------------------------------------------------------------------------

    def _on_value_event(self, event: Any) -> None:
        """A data watch fired (kazoo's callback thread)."""
        cache = self._cache
        assert cache is not None
        path = event.path or ""
        if path.startswith(self.base + "/") and path.endswith(VALUE_SUFFIX):
            key = path[len(self.base) + 1 : -len(VALUE_SUFFIX)]
            self.zk.hop(lambda: cache.drop_value(key))
        else:  # a session event: kazoo dropped its watches
            self.zk.hop(cache.clear)

    def _on_children_event(self, event: Any) -> None:
        """A child watch fired (kazoo's callback thread)."""
        cache = self._cache
        assert cache is not None
        path = event.path or ""
        if path == self.base or path.startswith(self.base + "/"):
            prefix = path[len(self.base) + 1 :]
            self.zk.hop(lambda: cache.drop_children(prefix))
        else:
            self.zk.hop(cache.clear)

    def _read_values(self, keys: Sequence[str]) -> dict[str, Entry]:
        """In a worker thread: pipelined reads of value nodes, chunks assembled."""

        kz = self.zk.kazoo
        watch = self._on_value_event if self._cache is not None else None
        out: dict[str, Entry] = {}
        for start in range(0, len(keys), READ_BATCH):
            batch = keys[start : start + READ_BATCH]
            pending = [(k, kz.get_async(self._value(k), watch)) for k in batch]
            for k, res in pending:
                try:
                    data, stat = self.zk.wait(res)
                except ke.NoNodeError:
                    continue
                if data[:1] == _BLOB:
                    entry = self._read_blob(k)
                    if entry is not None:
                        out[k] = entry
                else:
                    out[k] = Entry(k, _decode_inline(data, k), stat.version)
        return out

    def _read_blob(self, key: str) -> Entry | None:
        """In a worker thread: a chunked value, re-read if it changes while reading."""

        kz = self.zk.kazoo
        watch = self._on_value_event if self._cache is not None else None
        for _ in range(5):
            try:
                data, stat = self.zk.wait(kz.get_async(self._value(key), watch))
            except ke.NoNodeError:
                return None
            if data[:1] != _BLOB:
                return Entry(key, _decode_inline(data, key), stat.version)
            m = _Manifest.load(data, key)
            blob = _Blob(key, m, b"")
            pending = [
                kz.get_async(f"{self.base}/{BLOBS}/{blob.chunk_name(i)}") for i in range(m.chunks)
            ]
            try:
                payload = b"".join(self.zk.wait(r)[0] for r in pending)
            except ke.NoNodeError:
                continue  # replaced and swept while we read: read again
            if len(payload) != m.size or hashlib.sha256(payload).hexdigest() != m.sha256:
                raise StorageError(f"zookeeper: chunks of {key!r} do not match their manifest")
            value = zlib.decompress(payload) if m.compressed else payload
            return Entry(key, value, stat.version)
        raise StorageUnavailableError(f"zookeeper: {key!r} kept changing while being read")

    async def get(self, key: str) -> Entry | None:
        return (await self.get_many([key])).get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        self._check_open()
        if not keys:
            return {}
        cache = self._cache
        if cache is None:
            return await self.zk.call(self._read_values, list(keys), abandon_on_cancel=True)
        hits = {k: e for k in keys if (e := cache.values.get(k)) is not None}
        missing = [k for k in keys if k not in hits]
        if not missing:
            return hits
        generation = cache.generation
        read = await self.zk.call(self._read_values, missing, abandon_on_cancel=True)
        cache.fill(generation, read.values())
        return hits | read

    async def sync(self) -> None:
        """Wait until every watch notification for earlier commits has been applied.

        Why: a process that just won the election must not plan writes against a
        cached value whose change notification is still on its way.
        """
        if self._cache is not None:
            self._check_open()
            await self.zk.call(self.zk.drain_watches, self.base)

    def decoded(self, entry: Entry, decode: Callable[[bytes], T]) -> T:
        if self._cache is None:
            return decode(entry.value)
        return self._cache.decoded(entry, decode)

    @property
    def caches_reads(self) -> bool:
        return self._cache is not None

    async def wait_changed(self) -> None:
        if self._cache is None:
            await super().wait_changed()
        else:
            await self._cache.wait_changed()

    async def children(self, prefix: str) -> list[str]:
        self._check_open()
        if prefix:
            validate_key(prefix)
        path = self._dir(prefix)
        cache = self._cache
        watch = self._on_children_event if cache is not None else None
        if cache is not None and (names := cache.children.get(prefix)) is not None:
            return list(names)

        def fn() -> list[str] | None:
            """The names; None if the directory does not exist (then nothing is watched)."""
            try:
                names = self.zk.wait(self.zk.kazoo.get_children_async(path, watch))
            except ke.NoNodeError:
                return None
            return sorted(
                {
                    n[: -len(VALUE_SUFFIX)] if n.endswith(VALUE_SUFFIX) else n
                    for n in names
                    if not n.startswith("#")
                }
            )

        generation = cache.generation if cache is not None else 0
        names = await self.zk.call(fn, abandon_on_cancel=True)
        if names is None:
            return []
        if cache is not None:
            cache.fill_children(generation, prefix, names)
        return list(names)

    # -- commits -----------------------------------------------------------------------

    async def commit(self, ops: Sequence[Op]) -> list[int | None]:
        self._check_open()
        ops = list(ops)
        if not ops:
            return []
        if self._cache is None:
            return await self._commit(ops)
        try:
            return await self._commit(ops)
        finally:
            # Read-your-writes without waiting for the watches; after a failure the
            # outcome may be unknown, and a conflict means what we read is stale.
            self._cache.drop_written(op.key for op in ops if not isinstance(op, ZnodeCheck))

    async def _commit(self, ops: list[Op]) -> list[int | None]:
        for op in ops:
            if not isinstance(op, ZnodeCheck):
                validate_key(op.key)
        encoded: dict[int, bytes] = {}
        blobs: dict[int, _Blob] = {}
        for i, op in enumerate(ops):
            if isinstance(op, Create | Update):
                data = _encode_inline(bytes(op.value), self._threshold)
                if len(data) + len(self._value(op.key)) + OP_OVERHEAD > MAX_REQUEST:
                    blobs[i] = _make_blob(op.key, bytes(op.value), self._threshold)
                else:
                    encoded[i] = data
        try:
            for _attempt in range(STRUCTURE_ATTEMPTS):
                tx = await self._plan(ops, encoded, blobs)
                if sum(t.size() for t in tx) > MAX_REQUEST:
                    if not self._externalize(ops, encoded, blobs):
                        raise WriteTooLargeError(
                            f"{len(ops)} stored values are more than the {MAX_REQUEST} bytes "
                            "ZooKeeper accepts in one transaction: apply the change in parts"
                        )
                    continue
                for b in blobs.values():
                    self._inflight.add(b.manifest.id)
                    self._maybe_blobs = True
                try:
                    results = await self.zk.call(self._execute, ops, tx, blobs)
                except _Retry:
                    self._dirs.clear()
                    continue
                self._dirs.update(
                    t.path[len(self.base) + 1 :] for t in tx if t.kind == "dir-create"
                )
                if self._maybe_blobs and any(isinstance(op, Update | Delete) for op in ops):
                    await self.sweep_chunks()
                return results
            raise VersionConflictError(
                "zookeeper: the tree kept changing under the transaction; try again"
            )
        finally:
            for b in blobs.values():
                self._inflight.discard(b.manifest.id)

    def _externalize(
        self, ops: Sequence[Op], encoded: dict[int, bytes], blobs: dict[int, _Blob]
    ) -> bool:
        """Move the largest inline values into chunks until the transaction fits."""
        if not encoded:
            return False
        total = sum(len(d) for d in encoded.values())
        moved = False
        for i in sorted(encoded, key=lambda j: -len(encoded[j])):
            if len(encoded[i]) < 1024 or total <= MAX_REQUEST // 2:
                break
            op = ops[i]
            assert isinstance(op, Create | Update)
            blobs[i] = _make_blob(op.key, bytes(op.value), self._threshold)
            total -= len(encoded.pop(i))
            moved = True
        return moved

    async def _plan(
        self, ops: Sequence[Op], encoded: dict[int, bytes], blobs: dict[int, _Blob]
    ) -> list[_TxOp]:
        """The ZooKeeper ops for ``ops``: implicit directories created and removed."""
        # Which directories exist (ancestors of created keys, not known from earlier commits).
        wanted: set[str] = set()
        for op in ops:
            if isinstance(op, Create):
                d = parent_of(op.key)
                while d and d not in self._dirs and d not in wanted:
                    wanted.add(d)
                    d = parent_of(d)
        exists = await self._dirs_exist(sorted(wanted)) if wanted else {}
        self._dirs.update(d for d, e in exists.items() if e)

        def dir_exists(d: str) -> bool:
            return d == "" or exists.get(d, d in self._dirs)

        tx: list[_TxOp] = []
        #: directory -> child node name -> present after the transaction (as far as we changed it)
        final: dict[str, dict[str, bool]] = {}
        created_dirs: set[str] = set()
        for i, op in enumerate(ops):
            path = self._value(op.key) if not isinstance(op, ZnodeCheck) else op.key
            parent = parent_of(op.key)
            name = op.key[len(parent) + 1 :] if parent else op.key
            if isinstance(op, ZnodeCheck):
                tx.append(_TxOp("fence", "check", op.key, version=op.version, index=i))
            elif isinstance(op, Create):
                chain = []
                d = parent
                while d and not dir_exists(d) and d not in created_dirs:
                    chain.append(d)
                    d = parent_of(d)
                for d in reversed(chain):
                    tx.append(_TxOp("dir-create", "create", self._dir(d)))
                    created_dirs.add(d)
                    dp = parent_of(d)
                    final.setdefault(dp, {})[d[len(dp) + 1 :] if dp else d] = True
                tx.append(_TxOp("user", "create", path, self._data(i, encoded, blobs), index=i))
                final.setdefault(parent, {})[name + VALUE_SUFFIX] = True
            elif isinstance(op, Update):
                v = -1 if op.version is None else op.version
                data = self._data(i, encoded, blobs)
                tx.append(_TxOp("user", "set_data", path, data, version=v, index=i))
            elif isinstance(op, Delete):
                v = -1 if op.version is None else op.version
                tx.append(_TxOp("user", "delete", path, version=v, index=i))
                final.setdefault(parent, {})[name + VALUE_SUFFIX] = False
            else:
                assert isinstance(op, Check)
                tx.append(_TxOp("user", "check", path, version=op.version, index=i))
        for blob in blobs.values():
            for n in range(blob.manifest.chunks):
                tx.append(_TxOp("chunk", "check", f"{self.base}/{BLOBS}/{blob.chunk_name(n)}"))
        tx.extend(await self._prune_dirs(final))
        return tx

    def _data(self, i: int, encoded: dict[int, bytes], blobs: dict[int, _Blob]) -> bytes:
        return blobs[i].manifest.dump() if i in blobs else encoded[i]

    async def _dirs_exist(self, dirs: list[str]) -> dict[str, bool]:
        def fn() -> dict[str, bool]:
            pending = [(d, self.zk.kazoo.exists_async(self._dir(d))) for d in dirs]
            return {d: self.zk.wait(r) is not None for d, r in pending}

        return await self.zk.call(fn)

    async def _prune_dirs(self, final: dict[str, dict[str, bool]]) -> list[_TxOp]:
        """Deletes of directories the transaction empties, deepest first, and keep-checks."""
        out: list[_TxOp] = []
        done: set[str] = set()
        while True:
            todo = [
                d for d, names in final.items() if d and d not in done and not all(names.values())
            ]
            if not todo:
                return out
            depth = max(d.count("/") for d in todo)
            level = [d for d in todo if d.count("/") == depth]
            listed = await self._list_dirs(level)
            for d in sorted(level):
                done.add(d)
                names = final[d]
                base = listed[d]
                kept_old = sorted(n for n in base if names.get(n, True))
                added = [n for n, present in names.items() if present and n not in base]
                if not kept_old and not added:
                    out.append(_TxOp("dir-delete", "delete", self._dir(d)))
                    dp = parent_of(d)
                    final.setdefault(dp, {})[d[len(dp) + 1 :] if dp else d] = False
                    self._dirs.discard(d)
                elif not added:
                    out.append(_TxOp("keep", "check", f"{self._dir(d)}/{kept_old[0]}"))

    async def _list_dirs(self, dirs: list[str]) -> dict[str, set[str]]:
        def fn() -> dict[str, set[str]]:

            pending = [(d, self.zk.kazoo.get_children_async(self._dir(d))) for d in dirs]
            out: dict[str, set[str]] = {}
            for d, r in pending:
                try:
                    out[d] = set(self.zk.wait(r))
                except ke.NoNodeError:
                    out[d] = set()
            return out

        return await self.zk.call(fn)

    def _execute(
        self, ops: Sequence[Op], tx: list[_TxOp], blobs: dict[int, _Blob]
    ) -> list[int | None]:
        """In a worker thread: write chunks, commit the transaction, map its outcome."""

        kz = self.zk.kazoo
        written = self._write_blobs(list(blobs.values()))
        t = kz.transaction()
        for op in tx:
            if op.method == "create":
                t.create(op.path, op.data)
            elif op.method == "set_data":
                t.set_data(op.path, op.data, op.version)
            elif op.method == "delete":
                t.delete(op.path, op.version)
            else:
                t.check(op.path, op.version)
        try:
            results = self.zk.wait(t.commit_async())
        except BaseException:
            self._delete_quietly(written)
            raise
        failed = next(
            (
                (j, r)
                for j, r in enumerate(results)
                if isinstance(r, Exception)
                and not isinstance(r, ke.RolledBackError | ke.RuntimeInconsistency)
            ),
            None,
        )
        if failed is None:
            out: list[int | None] = [None] * len(ops)
            for op, r in zip(tx, results, strict=True):
                if op.kind == "user":
                    if op.method == "create":
                        out[op.index] = 0
                    elif op.method == "set_data":
                        out[op.index] = r.version
            return out
        self._delete_quietly(written)
        j, err = failed
        op = tx[j]
        if op.kind == "fence":
            raise FencedWriteError(
                f"write refused: fencing node {op.path} is gone or changed (leadership lost)"
            )
        if op.kind != "user":
            raise _Retry()
        user = ops[op.index]
        if isinstance(err, ke.NoNodeError):
            if isinstance(user, Create):
                raise _Retry()  # its directory vanished under us
            raise NotFoundError(f"storage key {user.key!r} does not exist")
        if isinstance(err, ke.NodeExistsError):
            raise VersionConflictError(f"{user.key!r} exists already")
        if isinstance(err, ke.BadVersionError):
            raise VersionConflictError(f"{user.key!r} is not at the expected version")
        if isinstance(err, ke.NotEmptyError):  # pragma: no cover - value nodes have no children
            raise _Retry()
        raise _map_error(err)

    def _write_blobs(self, blobs: list[_Blob]) -> list[str]:
        """In a worker thread: create every chunk (pipelined); their paths."""
        if not blobs:
            return []
        kz = self.zk.kazoo
        pending = []
        for b in blobs:
            for n in range(b.manifest.chunks):
                path = f"{self.base}/{BLOBS}/{b.chunk_name(n)}"
                data = b.payload[n * CHUNK_SIZE : (n + 1) * CHUNK_SIZE]
                pending.append((path, kz.create_async(path, data)))
        written, error = [], None
        for path, r in pending:
            try:
                self.zk.wait(r)
                written.append(path)
            except Exception as exc:
                if isinstance(exc, ke.NodeExistsError):  # a re-plan writes the same chunk again
                    written.append(path)
                elif error is None:
                    error = exc
        if error is not None:
            self._delete_quietly(written)
            raise error
        return written

    def _delete_quietly(self, paths: list[str]) -> None:
        pending = [self.zk.kazoo.delete_async(p) for p in paths]
        for r in pending:
            try:
                self.zk.wait(r)
            except Exception:  # leftovers are swept later
                continue

    async def sweep_chunks(self) -> int:
        """Delete chunk nodes no value references any more; how many were deleted.

        Runs after commits that replaced or deleted values while chunks exist;
        also usable by operators after a crash between writing and committing.
        """
        self._check_open()
        blobs_dir = f"{self.base}/{BLOBS}"

        inflight = frozenset(self._inflight)

        def fn() -> int | None:
            kz = self.zk.kazoo
            names = self.zk.wait(kz.get_children_async(blobs_dir))
            if not names:
                return None
            by_key: dict[str, list[tuple[str, str]]] = {}
            for n in names:
                try:
                    k, blob_id, _ = n.rsplit("@", 2)
                except ValueError:
                    continue
                by_key.setdefault(unquote(k), []).append((blob_id, n))
            pending = [(k, kz.get_async(self._value(k))) for k in by_key]
            doomed = []
            for k, r in pending:
                current = None
                try:
                    data, _ = self.zk.wait(r)
                    if data[:1] == _BLOB:
                        current = _Manifest.load(data, k).id
                except Exception:  # a missing value references nothing
                    pass
                doomed += [
                    f"{blobs_dir}/{n}"
                    for blob_id, n in by_key[k]
                    if blob_id != current and blob_id not in inflight
                ]
            self._delete_quietly(doomed)
            return len(doomed)

        swept = await self.zk.call(fn)
        if swept is None:
            self._maybe_blobs = False
        return swept or 0

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self.zk.aclose()
