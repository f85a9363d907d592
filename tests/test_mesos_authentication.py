"""Marathon's Mesos credentials: FrameworkInfo.principal, the secret file, and its masking."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from marathon_core.config import parse_config
from marathon_core.errors import ConfigError
from marathon_core.mesos import calls
from marathon_core.mesos.authentication import mesos_credentials
from marathon_core.redaction import redact


def test_the_principal_is_registered_with_and_the_secret_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("framework-s3cret\n")
    args = ["--mesos_authentication_principal", "marathon"]
    config = parse_config([*args, "--mesos_authentication_secret_file", str(secret)], environ={})
    assert calls.framework_info(config)["principal"] == "marathon"
    credentials = mesos_credentials(config)
    assert credentials is not None
    assert (credentials.principal, credentials.secret) == ("marathon", "framework-s3cret")
    encoded = credentials.authorization.removeprefix("Basic ")
    assert base64.b64decode(encoded) == b"marathon:framework-s3cret"
    assert "framework-s3cret" not in repr(credentials)
    assert redact("secret is framework-s3cret") == "secret is ***"


def test_no_credentials_without_a_secret_file() -> None:
    config = parse_config(["--mesos_authentication_principal", "marathon"], environ={})
    assert mesos_credentials(config) is None
    assert calls.framework_info(config)["principal"] == "marathon"
    assert "principal" not in calls.framework_info(parse_config([], environ={}))


@pytest.mark.parametrize(
    ("principal", "content", "message"),
    [
        (None, "s3cret", "needs --mesos_authentication_principal"),
        ("marathon", "", "is empty"),
        ("marathon", None, "No such file"),
    ],
)
def test_unusable_secret_files_stop_the_start(
    tmp_path: Path, principal: str | None, content: str | None, message: str
) -> None:
    secret = tmp_path / "secret"
    if content is not None:
        secret.write_text(content)
    args = ["--mesos_authentication_secret_file", str(secret)]
    if principal is not None:
        args += ["--mesos_authentication_principal", principal]
    with pytest.raises(ConfigError, match=message):
        mesos_credentials(parse_config(args, environ={}))
