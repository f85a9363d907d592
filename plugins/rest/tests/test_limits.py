"""Request limits and CORS over real HTTP on loopback: 4xx for what clients overdo,
disconnection for clients too slow to finish a request, never a 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

LIMITS = [
    "--http_max_request_body", "1000",
    "--http_max_header_size", "4096",
    "--http_header_timeout", "300",
    "--http_body_timeout", "300",
    "--http_max_connections", "3",
]  # fmt: skip


@pytest.fixture
def api_args() -> list[str]:
    return LIMITS


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def test_a_body_over_the_limit_is_answered_413(client: httpx.AsyncClient) -> None:
    big = {"id": "/big", "cmd": "x" * 2000}
    answer = await client.post("/v2/apps", json=big)
    assert answer.status_code == 413
    assert answer.json() == {"message": "Request body too large: the limit is 1000 bytes"}


async def test_a_chunked_body_over_the_limit_is_answered_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    answer = await client.post("/v2/apps", content=chunks())
    assert answer.status_code == 413
    assert "too large" in answer.json()["message"]


async def test_a_body_within_the_limit_is_served(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v2/apps", json={"id": "/small", "cmd": "sleep 1"})
    assert answer.status_code == 201, answer.text


async def test_headers_over_the_limit_are_answered_431(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v2/info", headers={"X-Padding": "x" * 8000})
    assert answer.status_code == 431


async def closed_within(stream: trio.SocketStream, seconds: float) -> bool:
    """Whether the server closes ``stream`` within ``seconds`` (reading all it sends)."""
    with trio.move_on_after(seconds):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


async def test_a_client_sending_headers_byte_by_byte_is_cut(
    api_url: str, client: httpx.AsyncClient
) -> None:
    stream = await trio.open_tcp_stream(*address(api_url))
    request = b"GET /v2/info HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 100 + b"\r\n\r\n"
    started = trio.current_time()
    sent = 0
    with trio.move_on_after(5):
        try:
            for byte in request:
                await stream.send_all(bytes([byte]))
                sent += 1
                await trio.sleep(0.02)
        except trio.BrokenResourceError:
            pass
    assert sent < len(request)
    assert await closed_within(stream, 2)
    assert trio.current_time() - started < 3
    assert (await client.get("/v2/info")).status_code == 200  # others are served


async def test_a_client_that_stalls_in_its_body_is_cut(api_url: str) -> None:
    stream = await trio.open_tcp_stream(*address(api_url))
    await stream.send_all(
        b"POST /v2/apps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    assert await closed_within(stream, 2)


async def test_connections_over_the_limit_are_answered_429(api_url: str) -> None:
    idle = [await trio.open_tcp_stream(*address(api_url)) for _ in range(3)]
    await trio.sleep(0.1)  # the server has accepted them
    extra = await trio.open_tcp_stream(*address(api_url))
    await extra.send_all(b"GET /v2/info HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    with trio.fail_after(5):
        while chunk := await extra.receive_some(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 429 ")
    assert answer.endswith(b'{"message":"Too many connections; try again shortly"}')
    for stream in idle:
        await stream.aclose()
    async with httpx.AsyncClient(base_url=api_url) as client:
        for _ in range(50):
            await trio.sleep(0.1)
            if (await client.get("/v2/info")).status_code == 200:
                break
        else:
            raise AssertionError("closed connections still count against the limit")


# -- CORS --------------------------------------------------------------------


@pytest.mark.parametrize(
    "api_args", [["--access_control_allow_origin", "https://a.example, https://b.example"]]
)
async def test_cors_echoes_only_allowed_origins(client: httpx.AsyncClient) -> None:
    for origin in ("https://a.example", "https://b.example"):
        answer = await client.get("/v2/apps", headers={"Origin": origin})
        assert answer.headers["access-control-allow-origin"] == origin
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert answer.headers["vary"] == "Origin"
    stranger = await client.get("/v2/apps", headers={"Origin": "https://evil.example"})
    assert stranger.status_code == 200
    assert not any(h.startswith("access-control-") for h in stranger.headers)
    preflight = await client.options(
        "/v2/apps",
        headers={
            "Origin": "https://a.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-Anything",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://a.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert (
        preflight.headers["access-control-allow-headers"] == "Accept, Authorization, Content-Type"
    )
    refused = await client.options(
        "/v2/apps",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in refused.headers
    assert refused.status_code < 500


@pytest.mark.parametrize("api_args", [["--access_control_allow_origin", "*"]])
async def test_cors_wildcard_never_comes_with_credentials(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v2/apps", headers={"Origin": "https://any.example"})
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers


async def test_no_cors_headers_by_default(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        answer = await client.get("/v2/apps", headers={"Origin": "https://a.example"})
    assert not any(h.startswith("access-control-") for h in answer.headers)


APP = {"id": "/csrf", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": 0}


@pytest.mark.parametrize("api_args", [["--access_control_allow_origin", "https://a.example"]])
async def test_a_cross_site_write_is_refused_before_it_happens(
    client: httpx.AsyncClient, api_url: str
) -> None:
    own = api_url.rstrip("/")
    forged = await client.post("/v2/apps", json=APP, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert "https://evil.example" in forged.json()["message"]
    sandboxed = await client.post("/v2/apps", json=APP, headers={"Origin": "null"})
    assert sandboxed.status_code == 403
    assert (await client.get("/v2/apps/csrf")).status_code == 404  # nothing was written
    for n, origin in enumerate(("https://a.example", own)):
        app = {**APP, "id": f"/csrf{n}"}
        answer = await client.post("/v2/apps", json=app, headers={"Origin": origin})
        assert answer.status_code == 201, (origin, answer.text)
        removed = await client.delete(f"/v2/apps/csrf{n}", headers={"Origin": origin})
        assert removed.is_success
    # Reads from other sites and writes without Origin (curl, client libraries) pass.
    assert (await client.get("/v2/apps", headers={"Origin": "https://evil.example"})).is_success
    assert (await client.post("/v2/apps", json=APP)).status_code == 201


async def test_cross_site_writes_are_refused_with_no_cors_configured(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        restart = await client.post(
            "/v2/apps/any/restart",
            content=b"a=b",
            headers={
                "Origin": "https://evil.example",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
    assert restart.status_code == 403
