from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from marathon_core.testing.processes import script_server


class StatusServer:
    """A real HTTP server process on 127.0.0.1 whose ``/health`` status tests set."""

    def __init__(self, port: int) -> None:
        self.port = port

    def set(self, status: int) -> None:
        httpx.get(f"http://127.0.0.1:{self.port}/set/{status}", timeout=5).raise_for_status()


@pytest.fixture
def status_server() -> Iterator[StatusServer]:
    """Mark its users ``processes``."""
    with script_server(Path(__file__).with_name("status_server.py")) as port:
        yield StatusServer(int(port))
