"""Whole processes for end-to-end tests and benchmarks: ``marathon`` itself, and servers.

A server binds a free loopback port and says where in its log (``--http_port 0``); we
read the URL from there.  Each runs in a session of its own and is killed by its PID
when its ``with`` block ends, however it ends.  Tests that use these start processes:
mark them ``processes`` (see :mod:`marathon_core.testing.pytest_plugin`).
``running_marathon`` needs marathon-rest installed (it waits for the REST API).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import attrs
import httpx

__all__ = [
    "RunningMarathon",
    "RunningServer",
    "agreed_leader",
    "live",
    "local_cluster_args",
    "running_marathon",
    "running_server",
    "script_server",
    "searchable_state_dir",
    "wait_for",
]

T = TypeVar("T")

_REST_API_LISTENING = re.compile(r"REST API listening on (https?://\S+)")


@attrs.define
class RunningServer:
    process: subprocess.Popen[str]
    #: Base URL it serves, e.g. ``http://127.0.0.1:40123``.
    url: str
    #: The process's log so far (stderr lines), kept while it runs.
    log: list[str] = attrs.field(factory=list)

    def stop(self, *, timeout: float = 10) -> int:
        """SIGTERM, as a supervisor stops it; returns the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@attrs.define
class RunningMarathon(RunningServer):
    def leader(self) -> str | None:
        """The leader this process reports (``host:port``), None if none or unreachable."""
        try:
            response = httpx.get(f"{self.url}/v2/leader", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json().get("leader") if response.status_code == 200 else None


def live(servers: Iterable[RunningMarathon]) -> list[RunningMarathon]:
    """The servers whose process still runs (a test SIGKILLs leaders)."""
    return [s for s in servers if s.process.poll() is None]


def agreed_leader(servers: Iterable[RunningMarathon]) -> RunningMarathon | None:
    """The live server that every live server names as leader; None while they disagree,
    have none, or name one that is gone (as during a failover)."""
    running = live(servers)
    leaders = {s.leader() for s in running}
    if len(leaders) != 1 or None in leaders:
        return None
    (address,) = leaders
    return next((s for s in running if s.url == f"http://{address}"), None)


def wait_for(condition: Callable[[], T | None], *, timeout: float = 30, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy (HTTP errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


@contextmanager
def running_server(command: Sequence[str], listening: re.Pattern[str]) -> Iterator[RunningServer]:
    """Start ``command``; once a line of its stderr matches ``listening`` (group 1: the
    URL), yield it running; kill it afterwards."""
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        stderr = process.stderr
        log: list[str] = []
        url = None
        for line in stderr:
            log.append(line)
            if match := listening.search(line):
                url = match.group(1)
                break
        if url is None:
            raise RuntimeError(f"{' '.join(command[:3])} exited with {process.wait()} early")
        # Keep reading the log so the process never blocks on a full pipe.
        threading.Thread(target=lambda: log.extend(stderr), daemon=True).start()
        yield RunningServer(process, url, log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@contextmanager
def running_marathon(*args: str, state_dir: Path) -> Iterator[RunningMarathon]:
    """``marathon <args>`` with state in ``state_dir`` and the API on a free loopback port."""
    command = [
        sys.executable, "-m", "marathon_core.cli",
        "--http_port", "0", "--http_address", "127.0.0.1", "--state_dir", str(state_dir), *args,
    ]  # fmt: skip
    with running_server(command, _REST_API_LISTENING) as server:
        yield RunningMarathon(server.process, server.url, server.log)


@contextmanager
def searchable_state_dir() -> Iterator[Path]:
    """A ``--state_dir`` below ``/tmp`` that every user may reach, removed afterwards.

    Tasks of ``--master local`` run as ``nobody`` when the tests run as root, and
    must reach their sandboxes below the state dir by path (``$MESOS_SANDBOX``,
    ``getcwd``); pytest's ``tmp_path`` lies below a directory only its owner may enter.
    """
    path = Path(tempfile.mkdtemp(prefix="marathon-state-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def local_cluster_args(agents: int, *, agent_resources: str | None = None) -> tuple[str, ...]:
    """``--master local`` with ``agents`` agents, ports picked by the kernel, quick revives."""
    args = [
        "--master", "local", "--local_agents", str(agents),
        "--local_master_port", "0", "--local_agent_port", "0",
        "--min_revive_offers_interval", "200",
    ]  # fmt: skip
    if agent_resources is not None:
        args += ["--local_agent_resources", agent_resources]
    return tuple(args)


@contextmanager
def script_server(script: Path, *args: str) -> Iterator[str]:
    """Run ``python script args``; yield the first line it prints (where it serves);
    kill it afterwards."""
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        if not address:
            raise RuntimeError(f"{script.name} exited with {process.wait()} before serving")
        yield address
    finally:
        process.kill()
        process.wait()
