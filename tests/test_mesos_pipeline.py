"""The call pipeline against scripted HTTP servers on loopback: order, errors, cancellation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from marathon_core.mesos.pipeline import Answer, CallPipeline, PipelineError

#: Serves one connection: gets the stream and the bytes of each request as they come.
Script = Callable[[trio.SocketStream, trio.MemoryReceiveChannel[bytes]], Awaitable[None]]

HEADERS = b"Content-Type: application/json\r\n"


async def serve(nursery: trio.Nursery, script: Script) -> tuple[str, list[int]]:
    """A server running ``script`` on each connection; returns its origin and a connection count."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    connections: list[int] = []

    async def handle(stream: trio.SocketStream) -> None:
        connections.append(1)
        send, receive = trio.open_memory_channel[bytes](1000)
        async with trio.open_nursery() as inner:
            inner.start_soon(split_requests, stream, send)
            await script(stream, receive)
            inner.cancel_scope.cancel()
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return f"http://127.0.0.1:{port}", connections


async def split_requests(stream: trio.SocketStream, send: trio.MemorySendChannel[bytes]) -> None:
    """The body of each request, in order (requests carry Content-Length)."""
    buffer = bytearray()
    while True:
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            data = await stream.receive_some(65536)
            if not data:
                return
            buffer += data
        head = bytes(buffer[:end]).lower()
        length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(buffer) < end + 4 + length:
            buffer += await stream.receive_some(65536)
        await send.send(bytes(buffer[end + 4 : end + 4 + length]))
        del buffer[: end + 4 + length]


def answer(status: int, body: bytes = b"", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %d X\r\n%sContent-Length: %d\r\n\r\n%s" % (status, extra, len(body), body)


async def echo(stream: trio.SocketStream, requests: trio.MemoryReceiveChannel[bytes]) -> None:
    async for body in requests:
        await stream.send_all(answer(202, body))


async def test_concurrent_calls_share_one_connection_and_get_their_own_answers(
    nursery: trio.Nursery,
) -> None:
    origin, connections = await serve(nursery, echo)
    pipeline = CallPipeline(origin, nursery)
    answers: dict[int, bytes] = {}

    async def call(n: int) -> None:
        answers[n] = (await pipeline.post("/api/v1/scheduler", HEADERS, b"%d" % n)).body

    async with trio.open_nursery() as calls:
        for n in range(200):
            calls.start_soon(call, n)
    assert answers == {n: b"%d" % n for n in range(200)}
    assert len(connections) == 1
    await pipeline.aclose()


async def test_answers_chunked_interim_and_without_length(nursery: trio.Nursery) -> None:
    async def script(stream: trio.SocketStream, requests: trio.MemoryReceiveChannel[bytes]) -> None:
        await requests.receive()
        await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(202, b"plain"))
        await requests.receive()
        chunked = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked += b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        await stream.send_all(chunked)
        await requests.receive()
        await stream.send_all(b"HTTP/1.1 500 Oops\r\n\r\nto the end")

    origin, _ = await serve(nursery, script)
    pipeline = CallPipeline(origin, nursery)
    first = await pipeline.post("/p", HEADERS, b"1")
    assert (first.status, first.body) == (202, b"plain")
    second = await pipeline.post("/p", HEADERS, b"2")
    assert (second.status, second.text) == (400, "abcde")
    third = await pipeline.post("/p", HEADERS, b"3")
    assert (third.status, third.body) == (500, b"to the end")
    await pipeline.aclose()


async def test_a_closed_connection_fails_what_it_did_not_answer_and_the_next_call_reconnects(
    nursery: trio.Nursery,
) -> None:
    async def script(stream: trio.SocketStream, requests: trio.MemoryReceiveChannel[bytes]) -> None:
        await requests.receive()
        with trio.move_on_after(0.5):
            await requests.receive()  # the second call, when there is one
        await stream.send_all(answer(202, b"first"))  # then the connection ends

    origin, connections = await serve(nursery, script)
    pipeline = CallPipeline(origin, nursery)
    outcomes: list[bytes | str] = []

    async def call(body: bytes) -> None:
        try:
            outcomes.append((await pipeline.post("/p", HEADERS, body)).body)
        except PipelineError:
            outcomes.append("failed")

    async with trio.open_nursery() as calls:
        calls.start_soon(call, b"1")
        await trio.testing.wait_all_tasks_blocked()
        calls.start_soon(call, b"2")
    assert outcomes == [b"first", "failed"]
    assert (await pipeline.post("/p", HEADERS, b"3")).body == b"first"
    assert len(connections) == 2
    await pipeline.aclose()


async def test_no_answer_in_time_fails_the_call(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream, requests: trio.MemoryReceiveChannel[bytes]) -> None:
        await trio.sleep_forever()

    origin, _ = await serve(nursery, silent)
    pipeline = CallPipeline(origin, nursery, timeout=0.2)
    with trio.fail_after(5), pytest.raises(PipelineError, match="in time"):
        await pipeline.post("/p", HEADERS, b"x")
    await pipeline.aclose()


async def test_a_cancelled_caller_leaves_the_order_intact(nursery: trio.Nursery) -> None:
    release = trio.Event()

    async def slow_first(
        stream: trio.SocketStream, requests: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        first = await requests.receive()
        await release.wait()
        await stream.send_all(answer(202, first))
        await echo(stream, requests)

    origin, _ = await serve(nursery, slow_first)
    pipeline = CallPipeline(origin, nursery)
    with trio.move_on_after(0.1) as scope:
        await pipeline.post("/p", HEADERS, b"abandoned")
    assert scope.cancelled_caught
    release.set()
    assert (await pipeline.post("/p", HEADERS, b"mine")).body == b"mine"
    await pipeline.aclose()


async def test_a_refused_connection_is_a_pipeline_error(nursery: trio.Nursery) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    pipeline = CallPipeline(f"http://127.0.0.1:{port}", nursery)
    with pytest.raises(PipelineError, match="cannot connect"):
        await pipeline.post("/p", HEADERS, b"x")


async def test_calls_sent_without_waiting_keep_their_place_and_hear_their_answer(
    nursery: trio.Nursery,
) -> None:
    origin, connections = await serve(nursery, echo)
    pipeline = CallPipeline(origin, nursery)
    heard: list[bytes | str] = []

    def on_answer(outcome: Answer | PipelineError) -> None:
        assert isinstance(outcome, Answer)
        heard.append(outcome.body)
        if outcome.body == b"boom":
            raise RuntimeError("a callback's bug")

    assert not pipeline.send_nowait("/p", HEADERS, b"x", on_answer)  # no connection yet
    assert (await pipeline.post("/p", HEADERS, b"first")).body == b"first"
    for body in (b"a", b"boom", b"b"):
        assert pipeline.send_nowait("/p", HEADERS, body, on_answer)
    # A waiting caller queued after them gets its own answer, after theirs.
    assert (await pipeline.post("/p", HEADERS, b"last")).body == b"last"
    assert heard == [b"a", b"boom", b"b"]  # and a raising callback broke nothing
    assert len(connections) == 1
    await pipeline.aclose()


async def test_a_call_sent_without_waiting_hears_of_a_lost_connection(
    nursery: trio.Nursery,
) -> None:
    async def hang_up(
        stream: trio.SocketStream, requests: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        await stream.send_all(answer(202, await requests.receive()))
        await requests.receive()  # the second call is read, never answered

    origin, _ = await serve(nursery, hang_up)
    pipeline = CallPipeline(origin, nursery)
    await pipeline.post("/p", HEADERS, b"open")
    outcomes: list[Answer | PipelineError] = []
    assert pipeline.send_nowait("/p", HEADERS, b"lost", outcomes.append)
    with trio.fail_after(5):
        while not outcomes:
            await trio.sleep(0.01)
    assert isinstance(outcomes[0], PipelineError)
    await pipeline.aclose()
