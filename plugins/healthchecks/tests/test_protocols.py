"""The probes against a real HTTP server process and a real TCP listener on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import pytest

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
