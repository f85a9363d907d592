"""Scheduler calls as pipelined HTTP/1.1 POSTs on one persistent connection per master.

Why not httpx: a launch sends one ACKNOWLEDGE per status update and one ACCEPT per
offer, thousands a second, each a few hundred bytes. httpx spends about a millisecond
of CPU on each (connection-pool bookkeeping, one ``send`` and one ``recv`` per call,
figures in ``benchmarks/bench_launch.py``); here a call costs about what formatting
its bytes costs. The master answers the requests of one connection in order (HTTP/1.1
pipelining; libprocess does, and so does mesos-local), so the n-th answer on the
connection is the n-th request's.

Each connection has a writer task, which sends everything queued since its last
write with one ``send`` (so the calls of one scheduler round go out together), and a
reader task, which hands each answer to its request. A caller only queues its bytes
and waits: when it is cancelled, its request still goes out whole (or its connection
fails) and its answer is still read, so the framing never breaks. A caller that need
not wait (:meth:`CallPipeline.send_nowait`) gives a callback instead, and costs no
task at all.

Errors: a refused connection, a connection the master closes, an answer that does not
parse or none within ``timeout`` ends the connection: every request on it without an
answer fails with :class:`PipelineError` (it may or may not have been handled, as with
any lost connection), and the next request opens a new connection. Requests are never
re-sent: an ACCEPT sent twice could launch twice.
"""

from __future__ import annotations

import collections
import logging
import math
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import attrs
import trio

__all__ = ["Answer", "CallPipeline", "OnAnswer", "PipelineError"]

log = logging.getLogger(__name__)

#: Bytes read at a time.
READ_SIZE = 65536
#: Largest answer head accepted (the master's are a few hundred bytes).
MAX_HEAD = 65536


class PipelineError(Exception):
    """The connection failed before this request was answered."""


@attrs.frozen
class Answer:
    """The master's answer to one request (header names in lower case)."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


#: Told how a request sent without waiting ended: its answer, or why there is none.
OnAnswer = Callable[["Answer | PipelineError"], None]


@attrs.define(eq=False)
class _Slot:
    """Where the answer to one request goes: to a waiting caller, or to a callback."""

    done: trio.Event | None = None
    on_answer: OnAnswer | None = None
    answer: Answer | None = None
    error: PipelineError | None = None

    def deliver(self, outcome: Answer | PipelineError) -> None:
        if isinstance(outcome, PipelineError):
            self.error = outcome
        else:
            self.answer = outcome
        if self.done is not None:
            self.done.set()
        elif self.on_answer is not None:
            try:
                self.on_answer(outcome)
            except Exception:  # one caller's bug must not end everyone's connection
                log.exception("a pipelined call's callback failed")


class _Connection:
    """One socket, its requests not yet answered (in order), its unsent and unparsed bytes."""

    def __init__(self, stream: trio.abc.Stream, socket: trio.SocketStream) -> None:
        self.stream = stream
        self.socket = socket
        self.waiting: collections.deque[_Slot] = collections.deque()
        self.pending = bytearray()
        self.queued = trio.Event()
        self.buffer = bytearray()
        self.broken: PipelineError | None = None

    def queue(self, request: bytes, slot: _Slot) -> None:
        self.waiting.append(slot)
        self.pending += request
        self.queued.set()

    def fail(self, error: PipelineError) -> None:
        """End the connection: every unanswered request fails with ``error``."""
        if self.broken is None:
            self.broken = error
        while self.waiting:
            self.waiting.popleft().deliver(self.broken)
        self.queued.set()  # the writer sees it is over
        self.socket.socket.close()  # wakes a reader blocked on it


class CallPipeline:
    """Pipelined POSTs to one origin (``http(s)://host:port``); see the module docstring.

    :param nursery: where the connections' reader and writer tasks run; they end
        with their connection, or with the nursery.
    """

    def __init__(self, origin: str, nursery: trio.Nursery, *, timeout: float = 10.0) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s)://host:port origin: {origin!r}")
        self.origin = origin
        self.timeout = timeout
        self._nursery = nursery
        self._host = parts.hostname
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._port = parts.port or (443 if self._tls else 80)
        self._host_header = parts.netloc.encode("ascii")
        self._connection: _Connection | None = None
        self._connecting = trio.Lock()

    async def post(self, path: str, headers: bytes, body: bytes) -> Answer:
        """POST ``body`` to ``path``; ``headers`` are complete ``Name: value\\r\\n`` lines."""
        connection = self._connection
        if connection is None or connection.broken is not None:
            connection = await self._connected()
        done = trio.Event()
        slot = _Slot(done=done)
        connection.queue(self._request(path, headers, body), slot)
        await done.wait()
        if slot.error is not None:
            raise slot.error
        assert slot.answer is not None
        return slot.answer

    def send_nowait(self, path: str, headers: bytes, body: bytes, on_answer: OnAnswer) -> bool:
        """Queue a POST as :meth:`post` does, without waiting: ``on_answer`` is called
        with its answer (or error) from the connection's reader task. False, and
        nothing sent, when no connection is open (then :meth:`post` opens one)."""
        connection = self._connection
        if connection is None or connection.broken is not None:
            return False
        connection.queue(self._request(path, headers, body), _Slot(on_answer=on_answer))
        return True

    def _request(self, path: str, headers: bytes, body: bytes) -> bytes:
        return b"".join(
            (
                b"POST ", path.encode("ascii"), b" HTTP/1.1\r\nHost: ", self._host_header,
                b"\r\n", headers, b"Content-Length: %d\r\n\r\n" % len(body), body,
            )
        )  # fmt: skip

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.fail(PipelineError("the pipeline was closed"))
        await trio.lowlevel.checkpoint()

    async def _connected(self) -> _Connection:
        async with self._connecting:
            connection = self._connection
            if connection is None or connection.broken is not None:
                try:
                    with trio.fail_after(self.timeout):
                        connection = await self._connect()
                except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
                    raise PipelineError(f"cannot connect to {self.origin}: {exc}") from exc
                self._connection = connection
                self._nursery.start_soon(self._write, connection)
                self._nursery.start_soon(self._read, connection)
            return connection

    async def _connect(self) -> _Connection:
        socket = await trio.open_tcp_stream(self._host, self._port)
        if self._tls is None:
            return _Connection(socket, socket)
        tls = trio.SSLStream(socket, self._tls, server_hostname=self._host, https_compatible=True)
        try:
            await tls.do_handshake()
        except BaseException:
            socket.socket.close()
            raise
        return _Connection(tls, socket)

    async def _write(self, connection: _Connection) -> None:
        """Send what was queued, all at once, until the connection ends."""
        try:
            while connection.broken is None:
                await connection.queued.wait()
                connection.queued = trio.Event()
                if connection.broken is not None or not connection.pending:
                    continue
                data, connection.pending = bytes(connection.pending), bytearray()
                with trio.move_on_after(self.timeout) as late:
                    await connection.stream.send_all(data)
                if late.cancelled_caught:
                    connection.fail(PipelineError(f"sending to {self.origin} timed out"))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            connection.fail(PipelineError(f"sending to {self.origin} failed: {exc}"))
        finally:
            connection.fail(PipelineError(f"the connection to {self.origin} was closed"))

    async def _read(self, connection: _Connection) -> None:
        """Hand each answer to its request, in order, until the connection ends.

        Waiting for an answer is bounded by ``timeout``; an idle connection is not.
        """
        try:
            while connection.broken is None:
                parsed = _parse(connection.buffer, at_eof=False)
                if parsed is not None:
                    answer, used, close = parsed
                    del connection.buffer[:used]
                    if not connection.waiting:
                        raise _ProtocolError(f"an answer nobody asked for: {answer.status}")
                    connection.waiting.popleft().deliver(answer)
                    if close:
                        connection.fail(PipelineError(f"{self.origin} closed the connection"))
                    continue
                deadline = trio.current_time() + self.timeout if connection.waiting else math.inf
                with trio.move_on_at(deadline):
                    data = await connection.stream.receive_some(READ_SIZE)
                    if not data:
                        if connection.buffer:  # an answer that runs to the end of input
                            self._last_answer(connection)
                        connection.fail(PipelineError(f"{self.origin} closed the connection"))
                    connection.buffer += data
                    continue
                connection.fail(PipelineError(f"no answer from {self.origin} in time"))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            connection.fail(PipelineError(f"reading from {self.origin} failed: {exc}"))
        except _ProtocolError as exc:
            connection.fail(PipelineError(f"{self.origin} answered badly: {exc}"))
        finally:
            connection.fail(PipelineError(f"the connection to {self.origin} was closed"))

    @staticmethod
    def _last_answer(connection: _Connection) -> None:
        parsed = _parse(connection.buffer, at_eof=True)
        if parsed is not None and connection.waiting:
            connection.waiting.popleft().deliver(parsed[0])


class _ProtocolError(Exception):
    pass


def _parse(buffer: bytearray, *, at_eof: bool) -> tuple[Answer, int, bool] | None:
    """(answer, bytes used, close after) of the first complete answer in ``buffer``."""
    start = 0
    while True:
        end = buffer.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buffer) - start > MAX_HEAD:
                raise _ProtocolError("answer head too long")
            return None
        lines = bytes(buffer[start:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise _ProtocolError(f"status line {lines[0][:80]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise _ProtocolError(f"header line {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if status >= 200:
            break  # 1xx: an interim answer; the real one follows
    close = version != "HTTP/1.1" or headers.get("connection", "").lower() == "close"
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunked = _chunked(buffer, start)
        if chunked is None:
            return None
        body, used = chunked
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise _ProtocolError("Content-Length is not a number") from None
        if len(buffer) < start + length:
            return None
        body, used = bytes(buffer[start : start + length]), start + length
    elif status in (204, 304):
        body, used = b"", start
    elif not at_eof:  # the body runs to the end of the connection
        return None
    else:
        body, used, close = bytes(buffer[start:]), len(buffer), True
    return Answer(status, headers, body), used, close


def _chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """A chunked body at ``start``: (body, where it ends), or None while incomplete."""
    body = bytearray()
    at = start
    while True:
        eol = buffer.find(b"\r\n", at)
        if eol < 0:
            return None
        try:
            size = int(bytes(buffer[at:eol]).split(b";")[0], 16)
        except ValueError:
            raise _ProtocolError("bad chunk size") from None
        at = eol + 2
        if size == 0:  # then trailers, if any, and an empty line
            end = buffer.find(b"\r\n", at)
            while end > at:
                at = end + 2
                end = buffer.find(b"\r\n", at)
            return None if end < 0 else (bytes(body), end + 2)
        if len(buffer) < at + size + 2:
            return None
        body += buffer[at : at + size]
        at += size + 2
