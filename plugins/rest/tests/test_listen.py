"""Where the API listens: loopback only without authentication, HTTPS with real TLS."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
import trio
import trustme

import marathon_rest.plugin
from marathon_core import hookimpl
from marathon_core.contracts.auth import HttpRequest, Identity
from marathon_core.errors import ConfigError
from marathon_core.testing.context import CoreContext, StandbyElection, memory_context
from marathon_rest.server import serve_api


class AnyoneIsAdmin:
    """An authentication plugin (its decisions do not matter here, only that it exists)."""

    @hookimpl
    def marathon_authenticate(self, request: HttpRequest) -> Identity | None:
        return Identity("admin")


async def serve(
    nursery: trio.Nursery,
    args: Sequence[str],
    *,
    plugins: dict[str, object] | None = None,
    election: StandbyElection | None = None,
) -> tuple[CoreContext, str]:
    ctx = await memory_context(
        args, plugins={"rest": marathon_rest.plugin, **(plugins or {})}, election=election
    )
    if election is None:
        await nursery.start(ctx.election.run, trio.sleep_forever)
    url: str = await nursery.start(serve_api, ctx)
    return ctx, url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def refuses(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


async def test_without_authentication_the_api_binds_loopback_only(nursery: trio.Nursery) -> None:
    port = free_port()
    _, url = await serve(nursery, ["--http_port", str(port)])
    assert url == f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/v2/info")).status_code == 200
    assert refuses("127.0.0.2", port)


@pytest.mark.parametrize("address", ["127.0.0.2", "0.0.0.0"])
async def test_without_authentication_another_address_is_refused(
    nursery: trio.Nursery, address: str
) -> None:
    with pytest.raises(ConfigError, match="--insecure_bind_any"):
        await serve(nursery, ["--http_port", "0", "--http_address", address])


async def test_insecure_bind_any_serves_another_address_and_warns(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    args = ["--http_port", "0", "--http_address", "127.0.0.2", "--insecure_bind_any"]
    _, url = await serve(nursery, args)
    assert url.startswith("http://127.0.0.2:")
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/v2/info")).status_code == 200
    assert any(
        "INSECURE" in r.message and "127.0.0.2" in r.message and r.levelno == logging.WARNING
        for r in caplog.records
    )


async def test_with_authentication_the_api_binds_every_address(nursery: trio.Nursery) -> None:
    port = free_port()
    _, url = await serve(nursery, ["--http_port", str(port)], plugins={"auth": AnyoneIsAdmin()})
    assert url == f"http://0.0.0.0:{port}"
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.2:{port}/v2/info")).status_code == 200


@pytest.mark.processes
def test_marathon_refuses_to_start_on_a_non_loopback_address_without_auth(
    tmp_path: Path,
) -> None:
    command = [
        sys.executable, "-m", "marathon_core.cli", "--master", "http://127.0.0.1:1",
        "--http_port", "0", "--http_address", "127.0.0.2", "--state_dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "marathon: error: refusing to serve the API on 127.0.0.2" in done.stderr


# -- TLS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_args(ca: trustme.CA, tmp_path: Path) -> list[str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(cert_file, append=True)
    cert.private_key_pem.write_to_path(key_file)
    return ["--https_port", "0", "--ssl_cert", str(cert_file), "--ssl_key", str(key_file)]


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(path)
    return path


def caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__ or error.__context__
    return False


def trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


async def test_https_only_verifies_refuses_plain_http_and_sends_hsts(
    nursery: trio.Nursery, tls_args: list[str], ca_file: Path
) -> None:
    http_port = free_port()
    _, url = await serve(nursery, ["--http_port", str(http_port), "--disable_http", *tls_args])
    assert url.startswith("https://127.0.0.1:")
    async with httpx.AsyncClient(verify=trusting(ca_file)) as client:
        info = await client.get(f"{url}/v2/info")
    assert info.status_code == 200
    assert info.headers["strict-transport-security"] == "max-age=31536000"
    assert info.headers["x-marathon-leader"].startswith("https://")
    assert refuses("127.0.0.1", http_port)
    https_port = int(url.rsplit(":", 1)[1])
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"http://127.0.0.1:{https_port}/v2/info")
    async with httpx.AsyncClient() as client:  # the system's CAs do not know ours
        with pytest.raises(httpx.ConnectError) as refused:
            await client.get(f"{url}/v2/info")
    assert caused_by(refused.value, ssl.SSLCertVerificationError)


async def test_http_and_https_side_by_side_without_hsts(
    nursery: trio.Nursery, tls_args: list[str], ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, url = await serve(nursery, ["--http_port", "0", *tls_args])
    assert url.startswith("http://127.0.0.1:")
    (listening,) = [r.getMessage() for r in caplog.records if "listening on" in r.getMessage()]
    https_url = listening.split(", ")[1]
    assert https_url.startswith("https://127.0.0.1:")
    async with httpx.AsyncClient(verify=trusting(ca_file)) as client:
        for base in (url, https_url):
            answer = await client.get(f"{base}/v2/info")
            assert answer.status_code == 200
            assert "strict-transport-security" not in answer.headers
            assert answer.json()["http_config"]["https_port"] == 0


async def test_a_standby_forwards_to_an_https_only_leader_and_verifies_it(
    nursery: trio.Nursery, tls_args: list[str], ca_file: Path
) -> None:
    _, leader_url = await serve(nursery, ["--http_port", "0", "--disable_http", *tls_args])
    leader = leader_url.removeprefix("https://")
    standby_args = ["--http_port", "0", "--disable_http", *tls_args]
    _, trusting_url = await serve(
        nursery, [*standby_args, "--ssl_ca", str(ca_file)], election=StandbyElection(leader)
    )
    _, distrusting_url = await serve(nursery, standby_args, election=StandbyElection(leader))
    async with httpx.AsyncClient(verify=trusting(ca_file)) as client:
        forwarded = await client.get(f"{trusting_url}/v2/info")
        assert forwarded.status_code == 200, forwarded.text
        assert forwarded.json()["elected"] is True  # the leader answered
        refused = await client.get(f"{distrusting_url}/v2/info")
        assert refused.status_code == 502
        assert refused.json()["message"].startswith("Connection to leader")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disable_http"], "--disable_http needs --https_port"),
        (["--https_port", "0"], "--https_port needs --ssl_cert and --ssl_key"),
        (["--ssl_cert", "c.pem", "--ssl_key", "k.pem"], "need --https_port"),
        (
            ["--https_port", "0", "--ssl_cert", "/nonexistent", "--ssl_key", "/nonexistent"],
            "cannot load --ssl_cert",
        ),
    ],
)
async def test_incomplete_tls_settings_are_refused(
    nursery: trio.Nursery, args: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        await serve(nursery, ["--http_port", "0", *args])
