"""Marathon's side of Mesos framework authentication: who it says it is, and its secret.

As in Marathon, ``--mesos_authentication_principal`` always goes into
``FrameworkInfo.principal`` (Mesos accounts reservations and authorization to it),
while credentials are sent only with ``--mesos_authentication``: then every call to
the master's scheduler API carries HTTP Basic credentials, as a master started with
``--authenticate_http_frameworks`` requires, made of the principal (required) and the
secret of ``--mesos_authentication_secret_file`` (optional, as in Marathon: without
it the secret is empty).  The secret is read at startup, so a missing or empty file
stops the start, and registered with :mod:`marathon_core.redaction` at once.
"""

from __future__ import annotations

import base64
from pathlib import Path

import attrs

from marathon_core.config import Config
from marathon_core.errors import ConfigError
from marathon_core.redaction import register_secret

__all__ = ["MesosCredentials", "ignored_secret_file", "mesos_credentials"]


@attrs.frozen
class MesosCredentials:
    """The principal and secret Marathon authenticates to Mesos with."""

    principal: str
    secret: str = attrs.field(repr=False)

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value (HTTP Basic)."""
        token = base64.b64encode(f"{self.principal}:{self.secret}".encode()).decode("ascii")
        return f"Basic {token}"


def mesos_credentials(config: Config) -> MesosCredentials | None:
    """The credentials ``config`` asks Marathon to authenticate with, None for none.

    The file holds the secret alone; one trailing newline (``echo secret > file``) is
    not part of it.  Raises :class:`ConfigError` for ``--mesos_authentication``
    without a principal, or a secret file that cannot be read or is empty.  Without
    ``--mesos_authentication`` the secret file is not read (Marathon ignores it; see
    :func:`ignored_secret_file`).
    """
    if not config.mesos_authentication:
        return None
    principal = config.mesos_authentication_principal
    if not principal:
        raise ConfigError(
            "--mesos_authentication needs --mesos_authentication_principal "
            "(the principal Marathon authenticates to Mesos as)"
        )
    path = config.mesos_authentication_secret_file
    if path is None:
        return MesosCredentials(principal, "")
    try:
        secret = Path(path).read_text().removesuffix("\n").removesuffix("\r")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigError(f"--mesos_authentication_secret_file {path}: {reason}") from None
    if not secret:
        raise ConfigError(f"--mesos_authentication_secret_file {path} is empty")
    register_secret(secret)
    return MesosCredentials(principal, secret)


def ignored_secret_file(config: Config) -> str | None:
    """A warning when a secret file is given but not used (no ``--mesos_authentication``)."""
    if config.mesos_authentication or config.mesos_authentication_secret_file is None:
        return None
    return (
        f"--mesos_authentication_secret_file {config.mesos_authentication_secret_file} is "
        "ignored without --mesos_authentication: Marathon registers with Mesos without "
        "credentials"
    )
