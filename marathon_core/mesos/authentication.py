"""Marathon's side of Mesos framework authentication: who it says it is, and its secret.

``--mesos_authentication_principal`` goes into ``FrameworkInfo.principal`` (Mesos
accounts reservations and authorization to it); with
``--mesos_authentication_secret_file`` every call to the master's scheduler API also
carries HTTP Basic credentials, as a master started with
``--authenticate_http_frameworks`` requires.  The secret is read at startup, so a
missing or empty file stops the start, and registered with
:mod:`marathon_core.redaction` at once.
"""

from __future__ import annotations

import base64
from pathlib import Path

import attrs

from marathon_core.config import Config
from marathon_core.errors import ConfigError
from marathon_core.redaction import register_secret

__all__ = ["MesosCredentials", "mesos_credentials"]


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
    not part of it.  Raises :class:`ConfigError` for a secret file without a
    principal, or a file that cannot be read or is empty.
    """
    path = config.mesos_authentication_secret_file
    if path is None:
        return None
    principal = config.mesos_authentication_principal
    if not principal:
        raise ConfigError(
            "--mesos_authentication_secret_file needs --mesos_authentication_principal"
        )
    try:
        secret = Path(path).read_text().removesuffix("\n").removesuffix("\r")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigError(f"--mesos_authentication_secret_file {path}: {reason}") from None
    if not secret:
        raise ConfigError(f"--mesos_authentication_secret_file {path} is empty")
    register_secret(secret)
    return MesosCredentials(principal, secret)
