"""The Mesos v1 scheduler HTTP client: one subscription, calls on another connection.

:meth:`MesosClient.run` keeps a SUBSCRIBE stream open for as long as it runs:
it subscribes (with the stored framework id, so a restarted scheduler keeps its
tasks), stores a newly assigned framework id *before* passing SUBSCRIBED on,
decodes the RecordIO stream and sends every event, as a typed value of
:mod:`marathon_core.mesos.events`, to a channel. The stream has no
read timeout; a heartbeat watchdog drops it when nothing arrived for
``heartbeat_interval * failure_threshold`` (Marathon's ``--mesos_heartbeat_*``
flags, not the master's announced interval) and subscribes again with backoff. A
307 from a non-leading master moves the client to the leader for the stream and
for every call. When a stream ends the client sends a
:class:`~marathon_core.mesos.events.Disconnected` event (its own, not a Mesos event)
so that consumers forget outstanding offers. Calls (ACKNOWLEDGE, ACCEPT, ...) are
pipelined on one keep-alive connection per master
(:mod:`marathon_core.mesos.pipeline`); the stream uses httpx.

Error handling: transport errors, 5xx/404, watchdog expiry and a malformed event
lead to a re-subscription; an ``ERROR`` event (framework removed, failed over to
another scheduler) raises :class:`SubscriptionError`, because retrying would fight
whoever took over -- Marathon exits in that case too.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import trio

from marathon_core.errors import MarathonError
from marathon_core.mesos import calls
from marathon_core.mesos.authentication import MesosCredentials
from marathon_core.mesos.detector import MasterNotFoundError
from marathon_core.mesos.events import (
    Disconnected,
    Error,
    Heartbeat,
    MesosEvent,
    Subscribed,
    decode_event,
)
from marathon_core.mesos.pipeline import Answer, CallPipeline, PipelineError
from marathon_core.mesos.recordio import RecordIODecoder, RecordIOError

__all__ = [
    "CallError",
    "ClientStatistics",
    "MesosClient",
    "SubscriptionError",
]

log = logging.getLogger(__name__)

SCHEDULER_PATH = "/api/v1/scheduler"
#: Timeout of a call, and of SUBSCRIBE's connection (the stream itself has no read
#: timeout; the watchdog covers it).
CALL_SECONDS = 10.0
STREAM_TIMEOUT = httpx.Timeout(CALL_SECONDS, read=None)
#: Redirects followed in a row before giving up on one attempt.
MAX_REDIRECTS = 5

Json = dict[str, Any]


class SubscriptionError(MarathonError):
    """Mesos refused or ended our subscription for good (an ERROR event)."""


class CallError(MarathonError):
    """A call was not accepted (not subscribed, or a non-2xx answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class ClientStatistics:
    subscriptions: int
    heartbeats: int
    events: int
    calls: int
    failed_calls: int
    connected: bool
    master_url: str


class MesosClient:
    """A framework's connection to the leading Mesos master.

    :param master_url: ``http://host:port`` of any master (307s lead to the leader).
    :param find_master: looks up the URL of the leading master before every
        subscription (``--master zk://``); without it every subscription starts from
        ``master_url`` again, so a master that died after redirecting us is left.
    :param framework_info: builds FrameworkInfo for a (re)subscription from the
        framework id to reuse (None on the very first registration).
    :param load_framework_id: reads the stored framework id.
    :param store_framework_id: stores a framework id Mesos assigned.
    :param events: where every event goes, decoded, in stream order (except
        heartbeats and the event types the scheduler has no use for).
    :param credentials: sent with every call (HTTP Basic), for a master that
        authenticates frameworks.
    """

    def __init__(
        self,
        master_url: str,
        *,
        find_master: Callable[[], Awaitable[str]] | None = None,
        framework_info: Callable[[str | None], Json],
        load_framework_id: Callable[[], Awaitable[str | None]],
        store_framework_id: Callable[[str], Awaitable[None]],
        events: trio.MemorySendChannel[MesosEvent],
        heartbeat_interval: float = 15.0,
        heartbeat_failure_threshold: int = 5,
        resubscribe_backoff: tuple[float, float] = (0.2, 10.0),
        http: httpx.AsyncClient | None = None,
        credentials: MesosCredentials | None = None,
    ) -> None:
        self.master_url = master_url.rstrip("/")
        self._origin = self.master_url
        self._find_master = find_master
        self._framework_info = framework_info
        self._load_framework_id = load_framework_id
        self._store_framework_id = store_framework_id
        self._events = events
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_failure_threshold = heartbeat_failure_threshold
        self._backoff = resubscribe_backoff
        self._credentials = credentials
        #: The ``Authorization`` header line of every call, empty without credentials.
        self._authorization = (
            b""
            if credentials is None
            else b"Authorization: %s\r\n" % credentials.authorization.encode()
        )
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=STREAM_TIMEOUT)
        #: Per master URL: the connection calls go on, and the endpoint's path there
        #: (masters we were redirected to stay until ``run`` ends; there are few).
        self._pipelines: dict[str, tuple[CallPipeline, str]] = {}
        #: Where the pipelines' connections run (while :meth:`run` runs).
        self._nursery: trio.Nursery | None = None
        self.framework_id: str | None = None
        self.stream_id: str | None = None
        self._subscribed = trio.Event()
        self._subscriptions = 0
        self._heartbeats = 0
        self._event_count = 0
        self._calls = 0
        self._failed_calls = 0

    # -- running -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay subscribed until cancelled; ready once the first SUBSCRIBED was handled."""
        delay = self._backoff[0]
        started = False

        def on_subscribed() -> None:
            nonlocal delay, started
            delay = self._backoff[0]
            if not started:
                started = True
                task_status.started()

        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                while True:
                    try:
                        await self._subscription(on_subscribed)
                    except (
                        httpx.HTTPError,
                        CallError,
                        RecordIOError,
                        ValueError,
                        MasterNotFoundError,
                    ) as exc:
                        log.warning("Mesos subscription to %s failed: %s", self.master_url, exc)
                    await self._lost_stream()
                    await trio.sleep(delay)
                    delay = min(delay * 2, self._backoff[1])
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                for pipeline, _ in self._pipelines.values():
                    await pipeline.aclose()
                self._pipelines.clear()
                if self._own_http:
                    await self._http.aclose()

    async def wait_subscribed(self) -> None:
        await self._subscribed.wait()

    @property
    def connected(self) -> bool:
        return self.stream_id is not None

    async def _lost_stream(self) -> None:
        if self.stream_id is not None:
            self.stream_id = None
            self._subscribed = trio.Event()
            await self._events.send(Disconnected())

    async def _subscription(self, on_subscribed: Callable[[], None]) -> None:
        """One subscription, until it ends; ``on_subscribed`` after SUBSCRIBED was handled."""
        found = await self._find_master() if self._find_master is not None else self._origin
        self.master_url = found.rstrip("/")
        framework_id = self.framework_id or await self._load_framework_id()
        body = json.dumps(calls.subscribe(self._framework_info(framework_id))).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._credentials is not None:
            headers["Authorization"] = self._credentials.authorization
        for _ in range(MAX_REDIRECTS):
            url = self.master_url + SCHEDULER_PATH
            async with self._http.stream(
                "POST", url, content=body, headers=headers, timeout=STREAM_TIMEOUT
            ) as response:
                if response.status_code == 307:
                    self._follow(response.headers.get("Location", ""))
                    continue
                if response.status_code == 401:
                    raise CallError(self._unauthorized(), 401)
                if response.status_code != 200:
                    await response.aread()
                    raise CallError(
                        f"SUBSCRIBE answered {response.status_code}: {response.text[:200]}",
                        response.status_code,
                    )
                await self._read(response, on_subscribed)
            return
        raise CallError(f"more than {MAX_REDIRECTS} redirects from {self.master_url}")

    def _unauthorized(self) -> str:
        if self._credentials is None:
            return (
                "SUBSCRIBE answered 401: the Mesos master requires framework authentication "
                "(give --mesos_authentication, --mesos_authentication_principal and "
                "--mesos_authentication_secret_file)"
            )
        return (
            f"SUBSCRIBE answered 401: the Mesos master refused the credentials of principal "
            f"'{self._credentials.principal}' (check --mesos_authentication_secret_file)"
        )

    async def _read(self, response: httpx.Response, on_subscribed: Callable[[], None]) -> None:
        stream_id = response.headers.get("Mesos-Stream-Id")
        decoder = RecordIODecoder()
        chunks = response.aiter_raw()
        watchdog = self.heartbeat_interval * self.heartbeat_failure_threshold
        # One scope whose deadline moves, not a scope per chunk (a launch brings
        # thousands of chunks a second), and only every tenth of the watchdog (at most
        # a second): it may fire that much early. It watches the master only: while
        # we wait for our own consumers, it has no deadline.
        renew = min(1.0, watchdog / 10)
        with trio.CancelScope() as wait:
            moved = -math.inf
            while True:
                now = trio.current_time()
                if now - moved > renew:
                    wait.deadline, moved = now + watchdog, now
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    log.warning("Mesos master %s closed the subscription stream", self.master_url)
                    return
                for record in decoder.feed(chunk):
                    raw = json.loads(record)
                    self._event_count += 1
                    event = decode_event(raw)
                    if event is None:
                        continue
                    if isinstance(event, Heartbeat):
                        self._heartbeats += 1
                        continue
                    if isinstance(event, Error):
                        raise SubscriptionError(f"Mesos ended the subscription: {event.message}")
                    if isinstance(event, Subscribed):
                        wait.deadline, moved = math.inf, -math.inf
                        await self._on_subscribed(event, stream_id)
                        await self._events.send(event)
                        on_subscribed()
                        continue
                    try:
                        self._events.send_nowait(event)  # the usual case: room in the buffer
                    except trio.WouldBlock:
                        wait.deadline, moved = math.inf, -math.inf
                        await self._events.send(event)
        log.warning("no Mesos heartbeat for %.1f s; subscribing again", watchdog)

    async def _on_subscribed(self, subscribed: Subscribed, stream_id: str | None) -> None:
        if stream_id is None:
            raise CallError("SUBSCRIBE answered without a Mesos-Stream-Id")
        framework_id = subscribed.framework_id
        if framework_id != self.framework_id:
            # Stored before anything acts on it: a crash now still finds our tasks again.
            await self._store_framework_id(framework_id)
        self.framework_id = framework_id
        self.stream_id = stream_id
        self._subscriptions += 1
        self._subscribed.set()
        log.info("subscribed to Mesos %s as framework %s", self.master_url, framework_id)

    def _follow(self, location: str) -> None:
        if location.startswith("//"):
            location = (urlsplit(self.master_url).scheme or "http") + ":" + location
        parts = urlsplit(location)
        if not parts.netloc:
            raise CallError(f"redirect without a master address: {location!r}")
        self.master_url = f"{parts.scheme}://{parts.netloc}"
        log.info("Mesos master redirected us to %s", self.master_url)

    # -- calls ---------------------------------------------------------------------

    async def call(self, call: Json) -> None:
        """Send a call on the current subscription; CallError unless Mesos answers 2xx.

        The framework id and ``Mesos-Stream-Id`` are filled in here. Calls go through
        a :class:`~marathon_core.mesos.pipeline.CallPipeline` per master: concurrent
        calls share one connection and are written together.
        """
        body = self._body(call)
        for _ in range(MAX_REDIRECTS):
            self._calls += 1
            try:
                pipeline, path = self._pipeline()
                answer = await pipeline.post(path, self._headers(), body)
            except PipelineError as exc:
                self._failed_calls += 1
                raise CallError(f"{call.get('type')}: {exc}") from exc
            if self._redirected(answer):
                continue
            failed = self._refusal(call, answer)
            if failed is not None:
                raise failed
            return
        raise CallError(f"more than {MAX_REDIRECTS} redirects from {self.master_url}")

    def try_post(self, call: Json, on_done: Callable[[CallError | None], None]) -> bool:
        """Send ``call`` as :meth:`call` does, without waiting: ``on_done`` hears how
        it ended (None: taken). False, and nothing sent, when no connection to the
        master is open yet (then :meth:`call` opens one).

        The scheduler's thousands of ACKNOWLEDGEs and ACCEPTs a second go this way,
        each costing no task and no wake-up. A redirect is followed by :meth:`call`.
        """
        found = self._pipelines.get(self.master_url)
        if found is None or self.stream_id is None or self.framework_id is None:
            return False
        pipeline, path = found
        kind = call.get("type")

        def answered(outcome: Answer | PipelineError) -> None:
            if isinstance(outcome, PipelineError):
                self._failed_calls += 1
                on_done(CallError(f"{kind}: {outcome}"))
            elif self._redirected(outcome) and self._nursery is not None:
                self._nursery.start_soon(self._call_reporting, call, on_done)
            else:
                on_done(self._refusal(call, outcome))

        if not pipeline.send_nowait(path, self._headers(), self._body(call), answered):
            return False
        self._calls += 1
        return True

    async def _call_reporting(
        self, call: Json, on_done: Callable[[CallError | None], None]
    ) -> None:
        try:
            await self.call(call)
        except CallError as exc:
            on_done(exc)
        else:
            on_done(None)

    def _body(self, call: Json) -> bytes:
        if self.stream_id is None or self.framework_id is None:
            self._failed_calls += 1
            raise CallError(f"{call.get('type')}: not subscribed to Mesos")
        call["framework_id"] = {"value": self.framework_id}
        return json.dumps(call).encode()

    def _headers(self) -> bytes:
        stream_id = (self.stream_id or "").encode("latin-1")
        headers = b"Content-Type: application/json\r\nMesos-Stream-Id: %s\r\n" % stream_id
        return headers + self._authorization

    def _redirected(self, answer: Answer) -> bool:
        """A 307 from a master that no longer leads: follow it (True)."""
        if answer.status != 307:
            return False
        self._follow(answer.headers.get("location", ""))
        return True

    def _refusal(self, call: Json, answer: Answer) -> CallError | None:
        """The error for an answer other than 2xx (None for 2xx)."""
        if answer.status // 100 == 2:
            return None
        self._failed_calls += 1
        return CallError(
            f"{call.get('type')} answered {answer.status}: {answer.text[:200]}", answer.status
        )

    def _pipeline(self) -> tuple[CallPipeline, str]:
        """The pipeline to the current master, and the scheduler endpoint's path there."""
        found = self._pipelines.get(self.master_url)
        if found is None:
            if self._nursery is None:
                raise PipelineError("the Mesos client is not running")
            parts = urlsplit(self.master_url)
            origin = f"{parts.scheme}://{parts.netloc}"
            pipeline = CallPipeline(origin, self._nursery, timeout=CALL_SECONDS)
            found = self._pipelines[self.master_url] = (pipeline, parts.path + SCHEDULER_PATH)
        return found

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(
            subscriptions=self._subscriptions,
            heartbeats=self._heartbeats,
            events=self._event_count,
            calls=self._calls,
            failed_calls=self._failed_calls,
            connected=self.connected,
            master_url=self.master_url,
        )
