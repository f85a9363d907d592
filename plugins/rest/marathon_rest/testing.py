"""Run a whole ``marathon`` process for tests and benchmarks, and find its API.

The API binds a free loopback port (``--http_port 0``); its URL is read from the
process's log. The process runs in its own session and is killed (by its PID) when
the ``with`` block ends, however it ends.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import attrs
import httpx

T = TypeVar("T")

_LISTENING = re.compile(r"REST API listening on (http://\S+)")


@attrs.define
class RunningMarathon:
    process: subprocess.Popen[str]
    #: Base URL of the REST API, e.g. ``http://127.0.0.1:40123``.
    url: str
    #: The process's log so far (stderr lines), kept while it runs.
    log: list[str] = attrs.field(factory=list)

    def leader(self) -> str | None:
        """The leader this process reports (``host:port``), None if none or unreachable."""
        try:
            response = httpx.get(f"{self.url}/v2/leader", timeout=5)
        except httpx.HTTPError:
            return None
        return response.json().get("leader") if response.status_code == 200 else None

    def stop(self, *, timeout: float = 10) -> int:
        """SIGTERM, as a supervisor stops it; returns the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


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
def running_marathon(*args: str, state_dir: Path) -> Iterator[RunningMarathon]:
    """``marathon <args>`` with state in ``state_dir`` and the API on a free loopback port."""
    command = [
        sys.executable,
        "-m",
        "marathon_core.cli",
        "--http_port",
        "0",
        "--http_address",
        "127.0.0.1",
        "--state_dir",
        str(state_dir),
        *args,
    ]
    process = subprocess.Popen(
        command,
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
            if match := _LISTENING.search(line):
                url = match.group(1)
                break
        if url is None:
            raise RuntimeError(f"marathon exited with {process.wait()} before serving its API")
        # Keep reading the log so the process never blocks on a full pipe.
        threading.Thread(target=lambda: log.extend(stderr), daemon=True).start()
        yield RunningMarathon(process, url, log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
