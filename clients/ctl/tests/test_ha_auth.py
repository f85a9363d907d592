"""marathon-ctl unchanged against a standby (it proxies to the leader, events included)
and against a server that requires credentials (marathon-auth)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from marathon_auth.passwords import hash_token
from marathon_core.testing.processes import running_marathon, wait_for

from .conftest import Ctl  # type: ignore[import-not-found]
from .live import app_file  # type: ignore[import-not-found]

#: No Mesos master: apps of zero instances deploy without one.
NO_MESOS = ("--master", "http://127.0.0.1:1", "--hostname", "127.0.0.1")


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.zookeeper
def test_through_a_standby_and_past_a_dead_master(ctl: Ctl, zk_url: str, tmp_path: Path) -> None:
    args = (*NO_MESOS, "--zk", zk_url, "--zk_session_timeout", "2000")
    with (
        running_marathon(*args, state_dir=tmp_path / "a") as a,
        running_marathon(*args, state_dir=tmp_path / "b") as b,
    ):
        leader = wait_for(lambda: a.leader() and a.leader() == b.leader() and a.leader())
        standby = b if a.url.endswith(":" + str(leader).split(":")[1]) else a
        env = {"MARATHON_URL": f"{closed_url()},{standby.url}"}
        path = app_file(tmp_path, id="/ha/web", instances=0)
        result = ctl("deploy", path, "--watch", "--timeout", "30", env=env)
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-1].startswith("✓ deployment ")
        assert ctl("leader", "show", env=env).stdout.strip() == leader
        assert ctl("app", "list", "-q", env=env).stdout == "/ha/web\n"


@pytest.mark.processes
def test_with_authentication(ctl: Ctl, tmp_path: Path) -> None:
    token = "ctl-token-0123456789abcdefghijklmnopqrstuvwxyz"
    users = tmp_path / "users.toml"
    users.write_text(
        f"""
[users.reader]
tokens = ["{hash_token(token)}"]
groups = ["readers"]

[[rules]]
groups = ["readers"]
actions = ["view"]
resources = ["*"]
"""
    )
    auth = ("--http_credentials", "admin:secret", "--auth_users", str(users))
    with running_marathon(*NO_MESOS, *auth, state_dir=tmp_path / "state") as server:
        env = {"MARATHON_URL": server.url}
        denied = ctl("app", "list", env=env)
        assert denied.exit_code == 1 and denied.stderr.startswith("GET /v2/apps: 401 ")
        path = app_file(tmp_path, id="/auth/web", instances=0)
        result = ctl("--user", "admin:secret", "deploy", path, "--watch", env=env)
        assert result.exit_code == 0, result.output
        reader = {**env, "MARATHON_TOKEN": token}
        listed = ctl("app", "list", "--json", env=reader)
        assert [a["id"] for a in json.loads(listed.stdout)["apps"]] == ["/auth/web"]
        forbidden = ctl("app", "scale", "/auth/web", "1", "--no-watch", env=reader)
        assert forbidden.exit_code == 1 and ": 403 " in forbidden.stderr
