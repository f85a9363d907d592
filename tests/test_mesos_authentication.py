"""Marathon's Mesos credentials: --mesos_authentication, FrameworkInfo.principal, the
secret file, and its masking."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from marathon_core.config import parse_config
from marathon_core.errors import ConfigError
from marathon_core.mesos import calls
from marathon_core.mesos.authentication import ignored_secret_file, mesos_credentials
from marathon_core.redaction import redact

AUTHENTICATE = ["--mesos_authentication", "--mesos_authentication_principal", "marathon"]


def test_the_principal_is_registered_with_and_the_secret_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("framework-s3cret\n")
    args = [*AUTHENTICATE, "--mesos_authentication_secret_file", str(secret)]
    config = parse_config(args, environ={})
    assert calls.framework_info(config)["principal"] == "marathon"
    credentials = mesos_credentials(config)
    assert credentials is not None
    assert (credentials.principal, credentials.secret) == ("marathon", "framework-s3cret")
    encoded = credentials.authorization.removeprefix("Basic ")
    assert base64.b64decode(encoded) == b"marathon:framework-s3cret"
    assert "framework-s3cret" not in repr(credentials)
    assert redact("secret is framework-s3cret") == "secret is ***"
    assert ignored_secret_file(config) is None


def test_the_secret_is_optional_with_the_flag() -> None:
    """As Marathon's Credential: the principal alone, with an empty secret."""
    credentials = mesos_credentials(parse_config(AUTHENTICATE, environ={}))
    assert credentials is not None
    assert base64.b64decode(credentials.authorization.removeprefix("Basic ")) == b"marathon:"


def test_the_flag_comes_from_the_environment_too() -> None:
    environ = {"MARATHON_MESOS_AUTHENTICATION": "true"}
    config = parse_config(["--mesos_authentication_principal", "m"], environ=environ)
    assert config.mesos_authentication and mesos_credentials(config) is not None
    disabled = parse_config(["--disable_mesos_authentication"], environ=environ)
    assert not disabled.mesos_authentication


def test_without_the_flag_the_principal_is_registered_but_no_credentials_sent(
    tmp_path: Path,
) -> None:
    config = parse_config(["--mesos_authentication_principal", "marathon"], environ={})
    assert mesos_credentials(config) is None
    assert calls.framework_info(config)["principal"] == "marathon"
    assert "principal" not in calls.framework_info(parse_config([], environ={}))
    # A secret file without the flag is ignored (as Marathon does), with a warning; it is
    # not even read, so a missing one does not stop the start.
    missing = str(tmp_path / "missing")
    args = ["--mesos_authentication_principal", "marathon"]
    with_file = parse_config([*args, "--mesos_authentication_secret_file", missing], environ={})
    assert mesos_credentials(with_file) is None
    warning = ignored_secret_file(with_file)
    assert warning is not None and "ignored without --mesos_authentication" in warning


@pytest.mark.parametrize(
    ("principal", "content", "message"),
    [
        (None, "s3cret", "--mesos_authentication needs --mesos_authentication_principal"),
        ("marathon", "", "is empty"),
        ("marathon", None, "No such file"),
    ],
)
def test_unusable_settings_stop_the_start(
    tmp_path: Path, principal: str | None, content: str | None, message: str
) -> None:
    secret = tmp_path / "secret"
    if content is not None:
        secret.write_text(content)
    args = ["--mesos_authentication", "--mesos_authentication_secret_file", str(secret)]
    if principal is not None:
        args += ["--mesos_authentication_principal", principal]
    with pytest.raises(ConfigError, match=message):
        mesos_credentials(parse_config(args, environ={}))


@pytest.mark.processes
def test_marathon_refuses_to_start_with_the_flag_and_no_principal(tmp_path: Path) -> None:
    started = subprocess.run(
        [sys.executable, "-m", "marathon_core.cli", "--mesos_authentication",
         "--state_dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert started.returncode == 2
    assert (
        "marathon: error: --mesos_authentication needs --mesos_authentication_principal"
        in started.stderr
    )
