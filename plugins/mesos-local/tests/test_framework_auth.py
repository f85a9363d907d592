"""Framework authentication on the embedded master, as Mesos does it for HTTP frameworks
(``--authenticate_http_frameworks``, ``--credentials``), and marathon authenticating
with ``--mesos_authentication``, ``--mesos_authentication_principal`` and
``--mesos_authentication_secret_file``."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import trio

from marathon_core.testing.mesos_protos import parse_strict
from marathon_core.testing.processes import (
    local_cluster_args,
    running_marathon,
    searchable_state_dir,
    wait_for,
)
from marathon_mesos_local.cli import main as mesos_local_main
from marathon_mesos_local.master.credentials import (
    REALM,
    CredentialsError,
    FrameworkAuthenticator,
    parse_credentials,
    read_credentials,
)
from marathon_mesos_local.master.model import MasterOptions
from marathon_mesos_local.master.server import Master

CREDENTIALS = {"marathon": "s3cret-framework", "other": "0ther-secret"}
CHALLENGE = f'Basic realm="{REALM}"'

# -- the credentials file ----------------------------------------------------------------


def test_the_json_format_is_mesos_credentials_message(mesos_pb: SimpleNamespace | None) -> None:
    document = {"credentials": [{"principal": p, "secret": s} for p, s in CREDENTIALS.items()]}
    if mesos_pb is not None:
        parse_strict(mesos_pb, document, mesos_pb.mesos.Credentials)
    assert parse_credentials(json.dumps(document)) == CREDENTIALS
    assert parse_credentials('{"credentials": [{"principal": "nosecret"}]}') == {"nosecret": ""}


def test_the_text_format_is_principal_secret_lines() -> None:
    assert parse_credentials("marathon s3cret-framework\n\nother  0ther-secret\n") == CREDENTIALS
    with pytest.raises(CredentialsError, match=r"^Invalid credential format at line 2$"):
        parse_credentials("marathon s3cret\nonly-a-principal\n")
    # JSON that is no Credentials message is read as text, as Mesos does
    with pytest.raises(CredentialsError, match="line 1"):
        parse_credentials('{"credentials": [{"principal": 1}]}')


def test_reading_the_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "credentials"
    path.write_text("marathon s3cret-framework\n")
    path.chmod(0o600)
    assert read_credentials(f"file://{path}") == {"marathon": "s3cret-framework"}
    assert "too open" not in caplog.text
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        read_credentials(path)
    assert "are too open" in caplog.text
    path.write_text("")
    with pytest.raises(
        CredentialsError, match=r"No credentials provided .* 'mesos-master-scheduler'$"
    ):
        read_credentials(path)
    with pytest.raises(CredentialsError, match=r"^Failed to read credentials file"):
        read_credentials(tmp_path / "missing")


def test_the_master_refuses_to_start_without_credentials(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert mesos_local_main(["--authenticate_http_frameworks", "--agents", "0"]) == 2
    assert "No credentials provided for the default 'basic' HTTP authenticator" in (
        capsys.readouterr().err
    )


def test_basic_authentication() -> None:
    authenticator = FrameworkAuthenticator(CREDENTIALS)

    def basic(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert authenticator.principal(basic("marathon:s3cret-framework")) == "marathon"
    for refused in (
        None,
        basic("marathon:wrong"),
        basic("marathon:s3cret-framework2"),
        basic("nobody:s3cret-framework"),
        basic("marathon"),
        "Bearer " + base64.b64encode(b"marathon:s3cret-framework").decode(),
        "Basic !!!",
    ):
        assert authenticator.principal(refused) is None, refused


# -- the scheduler API -------------------------------------------------------------------


@pytest.fixture
async def secured_master() -> AsyncIterator[Master]:
    options = MasterOptions(
        port=0, allocation_interval=0.2, framework_authenticator=FrameworkAuthenticator(CREDENTIALS)
    )
    master = Master(options)
    async with trio.open_nursery() as nursery:
        await nursery.start(master.run)
        yield master
        nursery.cancel_scope.cancel()


def _subscribe(principal: str | None = None) -> dict[str, object]:
    info: dict[str, object] = {"user": "nobody", "name": "auth-test"}
    if principal is not None:
        info["principal"] = principal
    return {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}


async def test_calls_without_valid_credentials_are_401(secured_master: Master) -> None:
    url = secured_master.url + "/api/v1/scheduler"
    async with httpx.AsyncClient(timeout=10) as http:
        for auth in (None, ("marathon", "wrong"), ("intruder", "s3cret-framework")):
            response = await http.post(url, json=_subscribe("marathon"), auth=auth)
            assert response.status_code == 401, auth
            assert response.headers["www-authenticate"] == CHALLENGE
            assert response.content == b""
        # authentication comes first: even a GET is challenged, not refused as a GET
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, auth=("marathon", CREDENTIALS["marathon"]))).status_code == 405


async def test_a_subscription_for_another_principal_is_refused(secured_master: Master) -> None:
    url = secured_master.url + "/api/v1/scheduler"
    async with httpx.AsyncClient(timeout=10, auth=("marathon", CREDENTIALS["marathon"])) as http:
        response = await http.post(url, json=_subscribe("other"))
    assert response.status_code == 400
    assert response.text == (
        "Failed to validate scheduler::Call: Authenticated principal 'marathon' does not "
        "match principal 'other' set in `FrameworkInfo`"
    )


async def test_an_authenticated_framework_subscribes_and_calls(
    secured_master: Master, schedulers, nursery: trio.Nursery
) -> None:
    client = schedulers(secured_master.url, auth=("marathon", CREDENTIALS["marathon"]))
    subscribed = await client.subscribe(nursery, principal="marathon")
    assert subscribed["type"] == "SUBSCRIBED"
    (framework,) = secured_master.state()["frameworks"]
    assert framework["principal"] == "marathon"
    assert (await client.call({"type": "REVIVE"})).status_code == 202
    # a call on the same stream without credentials is challenged too
    async with httpx.AsyncClient(timeout=10) as http:
        bare = await http.post(
            secured_master.url + "/api/v1/scheduler",
            json={"type": "REVIVE", "framework_id": {"value": client.framework_id}},
            headers={"Mesos-Stream-Id": client.stream_id or ""},
        )
    assert bare.status_code == 401
    # no principal in FrameworkInfo is allowed (Mesos checks only one that is set)
    anonymous_info = schedulers(secured_master.url, auth=("other", CREDENTIALS["other"]))
    assert (await anonymous_info.subscribe(nursery, name="no-principal"))["type"] == "SUBSCRIBED"


# -- marathon against an authenticating embedded master ----------------------------------


def _marathon_args(tmp_path: Path, secret: str) -> tuple[str, ...]:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(
        json.dumps({"credentials": [{"principal": "marathon", "secret": "s3cret-framework"}]})
    )
    credentials.chmod(0o600)
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")  # as `echo secret > file` writes it
    return (
        *local_cluster_args(1),
        "--local_authenticate_frameworks",
        "--local_credentials",
        str(credentials),
        "--mesos_authentication",
        "--mesos_authentication_principal",
        "marathon",
        "--mesos_authentication_secret_file",
        str(secret_file),
    )


@pytest.mark.cluster
def test_marathon_with_the_right_secret_subscribes_and_launches(tmp_path: Path) -> None:
    with (
        searchable_state_dir() as state_dir,
        running_marathon(*_marathon_args(tmp_path, "s3cret-framework"), state_dir=state_dir) as m,
    ):
        app = {"id": "/auth/sleep", "cmd": "sleep 300", "cpus": 0.1, "mem": 16}
        assert httpx.post(f"{m.url}/v2/apps", json=app, timeout=10).status_code == 201

        def running() -> bool:
            tasks = httpx.get(f"{m.url}/v2/apps/auth/sleep/tasks", timeout=5).json()["tasks"]
            return any(t["state"] == "TASK_RUNNING" for t in tasks)

        wait_for(running, timeout=30, what="the task running")
        master = next(
            found.group(1)
            for line in m.log
            if (found := re.search(r"marathon ready: master (http://\S+?),", line))
        )
        (framework,) = httpx.get(f"{master}/master/state", timeout=5).json()["frameworks"]
        assert framework["principal"] == "marathon"
        assert m.stop() == 0
    assert "s3cret-framework" not in "".join(m.log)


@pytest.mark.cluster
def test_marathon_with_a_wrong_secret_says_so_and_does_not_subscribe(tmp_path: Path) -> None:
    with (
        searchable_state_dir() as state_dir,
        running_marathon(*_marathon_args(tmp_path, "wrong-secret"), state_dir=state_dir) as m,
    ):
        wait_for(
            lambda: any("refused the credentials" in line for line in m.log),
            timeout=30,
            what="the refusal in the log",
        )
        assert m.stop() == 0
    log = "".join(m.log)
    assert (
        "SUBSCRIBE answered 401: the Mesos master refused the credentials of principal "
        "'marathon' (check --mesos_authentication_secret_file)"
    ) in log
    assert "subscribed to Mesos" not in log
    assert "wrong-secret" not in log
