"""The client over real HTTP on loopback (a small stdlib server in a thread): which
master answers, credentials, and how errors become exit codes."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from marathon_ctl.client import Marathon
from marathon_ctl.config import Settings
from marathon_ctl.errors import ApiError, ConnectionFailed

from .conftest import Ctl  # type: ignore[import-not-found]


class Stub(ThreadingHTTPServer):
    """Answers every request with ``status`` and ``body``; keeps what it was sent."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.status, self.body = status, body
        self.seen: list[tuple[str, str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Stub

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        data = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(status: int, body: Any) -> Iterator[Stub]:
    server = Stub(status, body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def marathon() -> Iterator[Stub]:
    yield from serve(200, {"leader": "m1:8080"})


@pytest.fixture
def closed_url() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_master_that_does_not_answer_is_skipped(marathon: Stub, closed_url: str) -> None:
    client = Marathon(Settings(urls=(closed_url, marathon.url)))
    assert client.get("/v2/leader") == {"leader": "m1:8080"}
    assert client.url == marathon.url  # and it stays with the one that answered
    client.get("/v2/leader")
    assert len(marathon.seen) == 2


def test_a_master_without_a_leader_is_skipped(marathon: Stub) -> None:
    for unavailable in serve(503, {"message": "no leader"}):
        client = Marathon(Settings(urls=(unavailable.url, marathon.url)))
        assert client.get("/v2/leader") == {"leader": "m1:8080"}


def test_no_master_answering_is_an_error_naming_them(closed_url: str) -> None:
    with pytest.raises(ConnectionFailed, match="no Marathon answered"):
        Marathon(Settings(urls=(closed_url,))).get("/v2/info")


def test_credentials_are_sent(marathon: Stub) -> None:
    Marathon(Settings(urls=(marathon.url,), user="alice:pw")).get("/v2/info")
    Marathon(Settings(urls=(marathon.url,), token="t0k")).get("/v2/info")
    assert [auth for _, _, auth in marathon.seen] == ["Basic YWxpY2U6cHc=", "Bearer t0k"]


def test_query_lists_repeat_their_key(marathon: Stub) -> None:
    Marathon(Settings(urls=(marathon.url,))).get("/v2/apps", embed=["a", "b"], skip=None)
    assert marathon.seen[0][1] == "/v2/apps?embed=a&embed=b"


def test_an_api_error_prints_marathons_message_and_exits_1(ctl: Ctl) -> None:
    body = {"message": "Object is not valid", "details": [{"path": "/id", "errors": ["bad"]}]}
    for server in serve(422, body):
        with pytest.raises(ApiError):
            Marathon(Settings(urls=(server.url,))).get("/v2/apps")
        result = ctl("--url", server.url, "app", "scale", "web", "2", "--no-watch")
        assert result.exit_code == 1
        assert result.stderr == "PUT /v2/apps/web: 422 Object is not valid\n  /id: bad\n"


def test_usage_errors_exit_1_not_2(ctl: Ctl) -> None:
    result = ctl("app", "scale", "web", "many")
    assert result.exit_code == 1 and "'many' is not a valid integer" in result.stderr
    assert ctl("no-such-command").exit_code == 1
    assert ctl("--help").exit_code == 0


def test_environment_and_json_output(ctl: Ctl, marathon: Stub) -> None:
    result = ctl("leader", "show", "--json", env={"MARATHON_URL": marathon.url})
    assert result.exit_code == 0 and json.loads(result.stdout) == {"leader": "m1:8080"}
    assert ctl("leader", "show", env={"MARATHON_URL": marathon.url}).stdout == "m1:8080\n"
