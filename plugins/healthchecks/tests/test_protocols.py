"""The probes against a real HTTP server process and a real TCP listener on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
import time
from functools import partial
from typing import Any

import pytest
import trio

from marathon_core.contracts.health import Outcome
from marathon_core.model.app import HealthCheck
from marathon_healthchecks.protocols import HttpCheck, TcpCheck

HTTP = HttpCheck("http")
TCP = TcpCheck()


@pytest.mark.processes
async def test_http_follows_the_servers_status(status_server: Any) -> None:
    check = HealthCheck(protocol="HTTP", path="/health")
    port = status_server.port
    assert (
        await HTTP.probe(check, host="127.0.0.1", port=port, timeout=5)
    ).outcome is Outcome.HEALTHY
    status_server.set(503)
    result = await HTTP.probe(check, host="127.0.0.1", port=port, timeout=5)
    assert result.outcome is Outcome.UNHEALTHY and result.cause == "503 Service Unavailable"
    status_server.set(302)  # redirects are not followed: 3xx is healthy
    result = await HTTP.probe(check, host="127.0.0.1", port=port, timeout=5)
    assert result.outcome is Outcome.HEALTHY


@pytest.mark.processes
async def test_http_times_out(status_server: Any) -> None:
    check = HealthCheck(protocol="HTTP", path="/slow")
    started = time.monotonic()
    result = await HTTP.probe(check, host="127.0.0.1", port=status_server.port, timeout=0.5)
    assert result.outcome is Outcome.UNHEALTHY and "timed out" in (result.cause or "")
    assert time.monotonic() - started < 3


async def test_http_to_a_closed_port_is_unhealthy() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await HTTP.probe(HealthCheck(), host="127.0.0.1", port=port, timeout=2)
    assert result.outcome is Outcome.UNHEALTHY and result.cause


async def test_tcp_is_healthy_while_something_listens() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    check = HealthCheck(protocol="TCP")
    try:
        result = await TCP.probe(check, host="127.0.0.1", port=port, timeout=2)
        assert result.outcome is Outcome.HEALTHY
    finally:
        listener.close()
    result = await TCP.probe(check, host="127.0.0.1", port=port, timeout=2)
    assert result.outcome is Outcome.UNHEALTHY


@pytest.mark.processes
async def test_http_probes_do_not_build_an_ssl_context_each_time(
    status_server: Any, monkeypatch: Any
) -> None:
    # ssl.create_default_context reads the CA store from disk: on the trio thread,
    # once per probe, it would block every other task.
    check_http = HttpCheck("http")
    check_https = HttpCheck("https")
    built: list[object] = []
    create = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(args)
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    check = HealthCheck(protocol="HTTP", path="/health")
    for _ in range(3):
        result = await check_http.probe(check, host="127.0.0.1", port=status_server.port, timeout=5)
        assert result.outcome is Outcome.HEALTHY
        result = await check_https.probe(
            check, host="127.0.0.1", port=status_server.port, timeout=5
        )
        assert result.outcome is Outcome.UNHEALTHY  # the server speaks plain HTTP
    assert built == []


@pytest.mark.processes  # openssl makes the certificate
async def test_https_is_healthy_with_a_self_signed_certificate(tmp_path: Any) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=task", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204 if self.path == "/ok" else 500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        https = HttpCheck("https")
        ok = await https.probe(HealthCheck(path="/ok"), host="127.0.0.1", port=port, timeout=5)
        assert ok.outcome is Outcome.HEALTHY  # the certificate is not verified
        bad = await https.probe(HealthCheck(path="/no"), host="127.0.0.1", port=port, timeout=5)
        assert bad.outcome is Outcome.UNHEALTHY and bad.cause == "500 Internal Server Error"
    finally:
        server.shutdown()
        server.server_close()


async def test_http_reads_the_status_line_and_nothing_else() -> None:
    async def answer(stream: trio.SocketStream, *, reply: bytes) -> None:
        await stream.receive_some(65536)
        await stream.send_all(reply)
        await stream.aclose()

    replies = [
        (b"HTTP/1.1 204 No Content\r\n", Outcome.HEALTHY, None),
        (b"HTTP/1.0 301\r\nLocation: /x\r\n\r\n", Outcome.HEALTHY, None),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", Outcome.UNHEALTHY, "404 Not Found"),
        (b"SSH-2.0-OpenSSH\r\n", Outcome.UNHEALTHY, "BadResponse: not an HTTP status line"),
        (b"", Outcome.UNHEALTHY, "BadResponse: connection closed before a response"),
    ]
    for reply, outcome, cause in replies:
        async with trio.open_nursery() as nursery:
            (listener,) = await nursery.start(
                partial(trio.serve_tcp, partial(answer, reply=reply), 0, host="127.0.0.1")
            )
            port = listener.socket.getsockname()[1]
            result = await HTTP.probe(HealthCheck(), host="127.0.0.1", port=port, timeout=5)
            nursery.cancel_scope.cancel()
        assert result.outcome is outcome, reply
        assert (result.cause or "").startswith(cause or ""), (reply, result.cause)


async def test_a_path_that_would_break_the_request_line_is_a_failure() -> None:
    result = await HTTP.probe(HealthCheck(path="/a b\r\nX: y"), host="127.0.0.1", port=9, timeout=1)
    assert result.outcome is Outcome.UNHEALTHY
    assert (result.cause or "").startswith("invalid request path")
