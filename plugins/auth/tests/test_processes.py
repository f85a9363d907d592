"""The installed distribution: its entry point, the hash command, and marathon-python
(the real PyPI client) against a server that requires credentials."""

from __future__ import annotations

import collections
import collections.abc
import subprocess
import sys
from pathlib import Path

import pytest

from marathon_auth.passwords import token_matches, verify_password
from marathon_core.config import parse_config
from marathon_core.plugins import get_plugin_host
from marathon_core.testing.processes import script_server

# marathon 0.13 still imports these from ``collections`` (removed in Python 3.10).
for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    setattr(collections, _name, getattr(collections.abc, _name))

from marathon import MarathonClient  # noqa: E402
from marathon.exceptions import MarathonHttpError  # noqa: E402
from marathon.models import MarathonApp  # noqa: E402

from .conftest import ADMIN, PROD, users_file_text  # type: ignore[import-not-found]  # noqa: E402


def test_the_installed_entry_point_adds_the_flags() -> None:
    host = get_plugin_host()
    assert "auth" in {p.name for p in host.plugins()}
    config = parse_config(
        ["--http_credentials", "a:b", "--http_realm", "R"],
        addoption_hook=host.addoption,
        environ={},
    )
    assert config.option("http_credentials") == "a:b" and config.option("http_realm") == "R"


@pytest.mark.processes
def test_the_hash_command_round_trips(tmp_path: Path) -> None:
    hashed = subprocess.run(
        [sys.executable, "-m", "marathon_auth.hash"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert verify_password("correct horse", hashed)
    assert not verify_password("correct horse\n", hashed)
    token_lines = subprocess.run(
        [Path(sys.executable).with_name("marathon-auth-passwd"), "--token"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    token, stored = (line.split(":", 1)[1].strip() for line in token_lines)
    assert token_matches(token, stored)
    empty = subprocess.run(
        [sys.executable, "-m", "marathon_auth.hash"], input="\n", capture_output=True, text=True
    )
    assert empty.returncode == 1 and "empty password" in empty.stderr


@pytest.mark.processes
def test_marathon_python_with_credentials(tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    users.write_text(users_file_text())
    script = Path(__file__).with_name("serve_with_auth.py")
    with script_server(
        script, "--auth_users", str(users), "--http_credentials", ":".join(ADMIN)
    ) as url:
        admin = MarathonClient(url, username=ADMIN[0], password=ADMIN[1])
        admin.create_app("/dev/api", MarathonApp(cmd="sleep 1000", mem=16, cpus=0.1))
        prod = MarathonClient(url, username=PROD[0], password=PROD[1])
        prod.create_app("/prod/web", MarathonApp(cmd="sleep 1000", mem=16, cpus=0.1))
        assert [a.id for a in prod.list_apps()] == ["/prod/web"]
        assert sorted(a.id for a in admin.list_apps()) == ["/dev/api", "/prod/web"]
        with pytest.raises(MarathonHttpError) as denied:
            prod.delete_app("/dev/api", force=True)
        assert denied.value.status_code == 403
        with pytest.raises(MarathonHttpError) as anonymous:
            MarathonClient(url).list_apps()
        assert anonymous.value.status_code == 401
