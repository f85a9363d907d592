"""Marathon's health-check protocols.

HTTP, HTTPS and TCP are Marathon-level checks: the leading scheduler runs them
(its ``checker`` is itself: the leader calls :meth:`probe`). HTTP(S) sends ``GET <path>`` and is
healthy on a status of 200-399 (redirects are not followed; HTTPS does not verify the
certificate, as in Marathon); a 1xx is discarded when ``ignoreHttp1xx`` is set and a
failure otherwise. TCP is healthy when a connection opens.

A probe is one fresh connection (as Marathon's, so a task that stops accepting shows),
one ``GET`` and the status line of the answer, on a trio stream: all a check reads. A
general HTTP client (an ``httpx`` client per probe) cost the leader about 1.3 ms of
CPU per check, which capped it near 500 checks/s, half of what 10,000 tasks checked
every 10 s need; this costs about 0.35 ms (``benchmarks/bench_health_checks.py``).

COMMAND, MESOS_HTTP, MESOS_HTTPS and MESOS_TCP are run by the Mesos agent; here they
are only accepted and validated (the core keeps the rules common to all protocols).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable

import attrs
import trio

from marathon_core.contracts.health import HealthChecker, HealthCheckProtocol, ProbeResult
from marathon_core.errors import Violation
from marathon_core.model.app import AppDefinition, HealthCheck

__all__ = ["AgentCheck", "HttpCheck", "TcpCheck", "http_verdict", "protocols"]

HEALTHY_STATUSES = range(200, 400)
INFORMATIONAL_STATUSES = range(100, 200)


def http_verdict(status: int, reason: str, *, ignore_http1xx: bool) -> ProbeResult:
    """Marathon's reading of an HTTP status (``HealthCheckWorker``)."""
    if status in HEALTHY_STATUSES:
        return ProbeResult.healthy()
    if ignore_http1xx and status in INFORMATIONAL_STATUSES:
        return ProbeResult.ignored()
    return ProbeResult.unhealthy(f"{status} {reason}".strip())


def _insecure_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _connect(host: str, port: int) -> trio.SocketStream:
    """A TCP connection to ``host:port``: a plain connect for an address (the usual
    agent host), trio's resolving ``open_tcp_stream`` for a name."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return await trio.open_tcp_stream(host, port)
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


class BadResponse(Exception):
    """The answer was not HTTP."""


#: ``HTTP/1.1 200 OK``: the status code, and the reason (which may be empty).
_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})(?: (.*))?")
#: What a request target may not hold (it goes on the request line as it is).
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")
MAX_STATUS_LINE = 16384


def _status_line(line: bytes) -> tuple[int, str]:
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise BadResponse(f"not an HTTP status line: {line[:80]!r}")
    return int(match.group(1)), (match.group(2) or b"").decode("latin-1")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@attrs.frozen
class HttpCheck:
    """HTTP or HTTPS, run by the scheduler."""

    scheme: str = "http"
    # Built once: creating a context reads the CA store from disk, which would block
    # the trio thread on every probe.
    _ssl: ssl.SSLContext = attrs.field(factory=_insecure_context, eq=False, repr=False, alias="ssl")

    @property
    def checker(self) -> HealthChecker:
        return self

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> Iterable[Violation]:
        return []  # the core's rules (port index, IPv6) are all Marathon has

    async def probe(
        self, check: HealthCheck, *, host: str, port: int, timeout: float
    ) -> ProbeResult:
        target = check.path or "/"
        if not target.startswith("/"):
            target = "/" + target
        if _UNSAFE_TARGET.search(target):
            return ProbeResult.unhealthy(f"invalid request path {target!r}")
        with trio.move_on_after(timeout):
            try:
                status, reason = await self._status(host, port, target)
            except (OSError, BadResponse, trio.BrokenResourceError) as exc:
                return ProbeResult.unhealthy(_describe(exc))  # ssl.SSLError is an OSError
            return http_verdict(status, reason, ignore_http1xx=check.ignore_http1xx)
        return ProbeResult.unhealthy(f"timed out after {timeout:g} s")

    async def _status(self, host: str, port: int, target: str) -> tuple[int, str]:
        """Status code and reason of ``GET target`` on a new connection (closed after)."""
        stream: trio.abc.Stream = await _connect(host, port)
        try:
            if self.scheme == "https":
                stream = trio.SSLStream(stream, self._ssl, server_hostname=host)
            request = (
                f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "User-Agent: marathon-health-check\r\nConnection: close\r\n\r\n"
            )
            await stream.send_all(request.encode("latin-1"))
            received = b""
            while b"\r\n" not in received:
                if len(received) > MAX_STATUS_LINE:
                    raise BadResponse("status line too long")
                data = await stream.receive_some(16384)
                if not data:
                    raise BadResponse("connection closed before a response")
                received += data
            return _status_line(received.split(b"\r\n", 1)[0])
        finally:
            with trio.CancelScope(shield=True):
                if isinstance(stream, trio.SocketStream):
                    await stream.aclose()  # a plain close: nothing to wait for
                else:
                    await trio.aclose_forcefully(stream)  # no TLS goodbye to wait on


@attrs.frozen
class TcpCheck:
    """TCP, run by the scheduler: healthy when a connection opens."""

    @property
    def checker(self) -> HealthChecker:
        return self

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> Iterable[Violation]:
        return []

    async def probe(
        self, check: HealthCheck, *, host: str, port: int, timeout: float
    ) -> ProbeResult:
        with trio.move_on_after(timeout):
            try:
                stream = await _connect(host, port)
            except OSError as exc:
                return ProbeResult.unhealthy(_describe(exc))
            await stream.aclose()
            return ProbeResult.healthy()
        return ProbeResult.unhealthy(f"timed out after {timeout:g} s")


@attrs.frozen
class AgentCheck:
    """COMMAND and MESOS_*: run by the Mesos agent, so only validated here."""

    protocol: str

    @property
    def checker(self) -> None:
        return None  # the agent probes

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> Iterable[Violation]:
        return []  # the core's rules (command defined, one Mesos check) are all Marathon has


def protocols() -> dict[str, HealthCheckProtocol]:
    """Every protocol by name, as the hook returns them."""
    tls = _insecure_context()
    return {
        "HTTP": HttpCheck("http", ssl=tls),
        "HTTPS": HttpCheck("https", ssl=tls),
        "TCP": TcpCheck(),
        "COMMAND": AgentCheck("COMMAND"),
        "MESOS_HTTP": AgentCheck("MESOS_HTTP"),
        "MESOS_HTTPS": AgentCheck("MESOS_HTTPS"),
        "MESOS_TCP": AgentCheck("MESOS_TCP"),
    }
