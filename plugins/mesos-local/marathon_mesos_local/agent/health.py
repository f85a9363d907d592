"""``TaskInfo.health_check`` run by the agent, as Mesos's executors run it.

Mesos's rules (``src/checks/health_checker.cpp`` and the command executor), kept here:

- the first check runs ``delay_seconds`` after the task is launched, each next one
  ``interval_seconds`` after the previous one ended; a check that outlasts
  ``timeout_seconds`` (0: no limit) is aborted and is a failure;
- COMMAND is healthy when the command exits 0; it runs inside the task's container
  (:meth:`~marathon_core.contracts.containerizers.Running.exec`: the task's user,
  sandbox and environment, its cgroups, ``docker exec``). HTTP is healthy on a final
  status of 200-399 (redirects followed, certificates not verified, as ``curl -sSLk``);
  TCP when a connection opens;
- a failure before the first success is ignored while ``grace_period_seconds`` since
  the launch last; any other failure counts, and is reported (``TaskStatus.healthy``
  false) every time; the first success, and the first after failures, is reported
  healthy; other successes are not;
- at ``consecutive_failures`` counted failures in a row the executor kills the task
  (its kill policy's grace period, 3 s without one) and stops checking it; the task
  ends TASK_KILLED with ``healthy`` false.

Reports are TASK_RUNNING updates with reason REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
carrying what the last update carried (the container status), as the command
executor sends them. Nothing is reported once the task is being killed or has ended.

HTTP and TCP checks are made from the agent to its own address (each embedded agent
has a loopback address of its own, where its tasks listen, standing in for the
``127.0.0.1`` of the task's network namespace that Mesos checks); a container port
that a Docker task publishes is checked on the host port it is mapped to.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import httpx
import trio

from marathon_core.contracts.containerizers import Launch, Running

__all__ = [
    "CheckSpec",
    "HealthReport",
    "check_port",
    "parse_check",
    "probe_once",
    "run_health_checks",
]

log = logging.getLogger(__name__)

#: HealthCheck's proto defaults (``mesos.proto``).
DEFAULT_DELAY = 15.0
DEFAULT_INTERVAL = 10.0
DEFAULT_TIMEOUT = 20.0
DEFAULT_CONSECUTIVE_FAILURES = 3
DEFAULT_CHECK_GRACE_PERIOD = 10.0

HEALTHY_STATUSES = range(200, 400)
#: The reason on every health update (``TaskStatus.Reason``).
HEALTH_REASON = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"


@attrs.frozen
class CheckSpec:
    """A ``HealthCheck`` message, decoded with the proto's defaults."""

    type: str
    delay: float = DEFAULT_DELAY
    interval: float = DEFAULT_INTERVAL
    #: None: no limit (the proto's 0).
    timeout: float | None = DEFAULT_TIMEOUT
    consecutive_failures: int = DEFAULT_CONSECUTIVE_FAILURES
    grace_period: float = DEFAULT_CHECK_GRACE_PERIOD
    command: Mapping[str, Any] = attrs.field(factory=dict)
    scheme: str = "http"
    path: str = ""
    port: int = 0


def parse_check(info: Mapping[str, Any]) -> CheckSpec | None:
    """The task's health check, or None when it has none (or one of no known type)."""
    check = info.get("health_check")
    if not check:
        return None
    kind = str(check.get("type", "UNKNOWN"))
    timeout = float(check.get("timeout_seconds", DEFAULT_TIMEOUT))
    common: dict[str, Any] = {
        "delay": float(check.get("delay_seconds", DEFAULT_DELAY)),
        "interval": float(check.get("interval_seconds", DEFAULT_INTERVAL)),
        "timeout": timeout if timeout > 0 else None,
        "consecutive_failures": int(
            check.get("consecutive_failures", DEFAULT_CONSECUTIVE_FAILURES)
        ),
        "grace_period": float(check.get("grace_period_seconds", DEFAULT_CHECK_GRACE_PERIOD)),
    }
    if kind == "COMMAND" and check.get("command"):
        return CheckSpec(kind, command=check["command"], **common)
    if kind == "HTTP" and check.get("http"):
        http = check["http"]
        return CheckSpec(
            kind,
            scheme=str(http.get("scheme", "http")),
            path=str(http.get("path", "")),
            port=int(http["port"]),
            **common,
        )
    if kind == "TCP" and check.get("tcp"):
        return CheckSpec(kind, port=int(check["tcp"]["port"]), **common)
    log.warning("health check of type %s not run: not a valid HealthCheck", kind)
    return None


def check_port(info: Mapping[str, Any], port: int) -> int:
    """The host port to check for the task's ``port``: the one a Docker container port
    is published on, else ``port`` itself."""
    container = info.get("container") or {}
    mappings = list((container.get("docker") or {}).get("port_mappings", []))
    for network in container.get("network_infos", []):
        mappings += network.get("port_mappings", [])
    for mapping in mappings:
        if int(mapping.get("container_port", -1)) == port and mapping.get("host_port"):
            return int(mapping["host_port"])
    return port


@attrs.frozen
class HealthReport:
    """What the checker tells the executor (Mesos's ``TaskHealthStatus``)."""

    healthy: bool
    consecutive_failures: int = 0
    kill_task: bool = False


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_TLS = _insecure()


async def _http(spec: CheckSpec, host: str, port: int) -> str | None:
    """None when healthy, else why not."""
    path = spec.path if spec.path.startswith("/") or not spec.path else "/" + spec.path
    url = f"{spec.scheme}://{host}:{port}{path}"
    try:
        async with httpx.AsyncClient(
            verify=_TLS, timeout=None, trust_env=False, follow_redirects=True
        ) as client:
            response = await client.get(url)
    except (httpx.HTTPError, OSError) as exc:
        return f"HTTP request failed: {type(exc).__name__}: {exc}"
    if response.status_code in HEALTHY_STATUSES:
        return None
    return f"Unexpected HTTP response code: {response.status_code} {response.reason_phrase}"


async def _tcp(host: str, port: int) -> str | None:
    try:
        stream = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        return f"TCP connection failed: {exc}"
    await stream.aclose()
    return None


async def _command(spec: CheckSpec, running: Running, launch: Launch) -> str | None:
    command = spec.command
    variables = {
        v["name"]: v.get("value", "")
        for v in (command.get("environment") or {}).get("variables", [])
        if v.get("type", "VALUE") == "VALUE"
    }
    check = attrs.evolve(
        launch,
        command=command.get("value"),
        arguments=tuple(command.get("arguments", [])),
        shell=bool(command.get("shell", True)),
        environment={**launch.environment, **variables},
    )
    termination = await running.exec(check)
    if termination.exit_code == 0:
        return None
    if termination.signal is not None:
        return f"Command was terminated by signal {termination.signal}"
    return f"Command exited with status {termination.exit_code}"


async def probe_once(
    spec: CheckSpec, *, running: Running, launch: Launch, host: str, info: Mapping[str, Any]
) -> str | None:
    """One check: None when healthy, else the failure's text (Mesos's wording)."""
    name = f"{spec.type} health check"
    try:
        with trio.move_on_after(spec.timeout if spec.timeout is not None else float("inf")):
            if spec.type == "COMMAND":
                return await _command(spec, running, launch)
            port = check_port(info, spec.port)
            if spec.type == "HTTP":
                return await _http(spec, host, port)
            return await _tcp(host, port)
    except Exception as exc:  # could not even be started: a failure, as in Mesos
        return f"{name} failed: {exc}"
    return f"{name} has not returned after {spec.timeout:g} s; aborting"


async def run_health_checks(
    spec: CheckSpec,
    *,
    probe: Callable[[], Awaitable[str | None]],
    report: Callable[[HealthReport], None],
) -> None:
    """Check forever (until cancelled) by Mesos's rules, calling ``report`` as its
    health checker calls the executor back; ``probe`` is one check (None: healthy)."""
    started = trio.current_time()
    initializing = True
    failures = 0
    await trio.sleep(spec.delay)
    while True:
        problem = await probe()
        if problem is None:
            if initializing or failures > 0:
                report(HealthReport(healthy=True))
                initializing = False
            failures = 0
        elif (
            initializing
            and spec.grace_period > 0
            and trio.current_time() - started <= spec.grace_period
        ):
            log.info("ignoring failure of %s health check: still in grace period", spec.type)
        else:
            failures += 1
            log.warning(
                "%s health check failed %d times consecutively: %s", spec.type, failures, problem
            )
            kill = failures >= spec.consecutive_failures
            report(HealthReport(healthy=False, consecutive_failures=failures, kill_task=kill))
        await trio.sleep(spec.interval)
