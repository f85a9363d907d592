from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


class StatusServer:
    """A real HTTP server process on 127.0.0.1 whose ``/health`` status tests set."""

    def __init__(self, port: int) -> None:
        self.port = port

    def set(self, status: int) -> None:
        httpx.get(f"http://127.0.0.1:{self.port}/set/{status}", timeout=5).raise_for_status()


@pytest.fixture
def status_server() -> Iterator[StatusServer]:
    script = Path(__file__).parent / "status_server.py"
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield StatusServer(int(process.stdout.readline()))
    finally:
        process.kill()
        process.wait()
