"""Framework authentication as a Mesos master does it for HTTP frameworks.

With ``--authenticate_http_frameworks`` (or ``--authenticate_frameworks``) and
``--credentials FILE``, every call to ``/api/v1/scheduler`` must carry HTTP Basic
credentials listed in the file (Mesos's default ``basic`` HTTP authenticator, realm
``mesos-master-scheduler``); anything else is answered ``401`` with a
``WWW-Authenticate`` challenge before the call is looked at.  The file takes Mesos's
two formats: JSON (``{"credentials": [{"principal": "p", "secret": "s"}]}``, the
``Credentials`` message) or one ``principal secret`` pair per line.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import attrs

__all__ = [
    "REALM",
    "CredentialsError",
    "FrameworkAuthenticator",
    "parse_credentials",
    "read_credentials",
]

log = logging.getLogger(__name__)

#: Mesos's DEFAULT_HTTP_FRAMEWORK_AUTHENTICATION_REALM.
REALM = "mesos-master-scheduler"


class CredentialsError(ValueError):
    """A credentials file Mesos would refuse to start with."""


def parse_credentials(text: str) -> dict[str, str]:
    """Principal -> secret from a credentials file's text, as Mesos reads it.

    JSON that is a ``Credentials`` message wins; any other text is read as lines of
    exactly two space-separated tokens (empty lines skipped), and a line with another
    count is refused as Mesos refuses it.
    """
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    found = _from_json(document)
    if found is not None:
        return found
    credentials: dict[str, str] = {}
    for number, line in enumerate((line for line in text.split("\n") if line), 1):
        tokens = [token for token in line.split(" ") if token]
        if len(tokens) != 2:
            raise CredentialsError(f"Invalid credential format at line {number}")
        credentials[tokens[0]] = tokens[1]
    return credentials


def _from_json(document: object) -> dict[str, str] | None:
    """The credentials of a JSON ``Credentials`` message, None if it is not one."""
    if not isinstance(document, dict) or set(document) - {"credentials"}:
        return None
    entries = document.get("credentials", [])
    if not isinstance(entries, list):
        return None
    credentials: dict[str, str] = {}
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or set(entry) - {"principal", "secret"}
            or not isinstance(entry.get("principal"), str)
            or not isinstance(entry.get("secret", ""), str)
        ):
            return None
        credentials[entry["principal"]] = entry.get("secret", "")
    return credentials


def read_credentials(path: str | Path) -> dict[str, str]:
    """The credentials in the file ``--credentials`` names (``file://`` allowed).

    An empty file or one without credentials is refused: Mesos will not start its
    ``basic`` authenticator without credentials.  A file others may read is only
    warned about, as Mesos does.
    """
    path = Path(str(path).removeprefix("file://"))
    try:
        text = path.read_text()
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise CredentialsError(
            f"Failed to read credentials file '{path}': {exc.strerror}"
        ) from None
    if mode & stat.S_IRWXO:
        log.warning(
            "Permissions on credentials file '%s' are too open; it is recommended that "
            "your credentials file is NOT accessible by others",
            path,
        )
    credentials = parse_credentials(text)
    if not credentials:
        raise CredentialsError(
            f"No credentials provided for the default 'basic' HTTP authenticator for "
            f"realm '{REALM}'"
        )
    return credentials


@attrs.frozen
class FrameworkAuthenticator:
    """HTTP Basic authentication of scheduler calls against a credentials file."""

    credentials: Mapping[str, str] = attrs.field(repr=False)

    @property
    def challenge(self) -> str:
        return f'Basic realm="{REALM}"'

    def principal(self, authorization: str | None) -> str | None:
        """The authenticated principal of an ``Authorization`` header, None if none.

        Secrets are compared in constant time; an unknown principal costs the same
        comparison, so timing names no principals.
        """
        if authorization is None:
            return None
        scheme, _, encoded = authorization.partition(" ")
        if scheme != "Basic" or not encoded or " " in encoded:
            return None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        principal, colon, secret = decoded.partition(":")
        if not colon:
            return None
        expected = self.credentials.get(principal)
        matches = hmac.compare_digest(
            (expected if expected is not None else secret + "\x00").encode(), secret.encode()
        )
        return principal if matches and expected is not None else None
