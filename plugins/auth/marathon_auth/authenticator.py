"""Who is calling: HTTP Basic (users file or ``--http_credentials``) or a bearer token.

scrypt costs about 60 ms of CPU, and clients send Basic credentials with every
request; a password that verified once is remembered as an HMAC under a key that
lives only in this process, so later requests cost a hash, not an scrypt. A changed
users file means a restart, which forgets them.

marathon-rest calls the hook in worker threads (the scrypt must not stall the event
loop), several at once: the failure counts are kept under a lock, and the scrypt runs
outside it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading

import attrs

from marathon_auth.directory import Directory, User
from marathon_auth.limiter import FailureLimiter
from marathon_auth.passwords import hash_password, token_matches, verify_password
from marathon_core.contracts.auth import HttpRequest, Identity
from marathon_core.errors import NotAuthenticatedError, UserError

__all__ = ["Authenticator", "TooManyFailuresError"]

#: Marathon's answer to bad credentials (its RAML example).
INVALID_CREDENTIALS = "Invalid username or password."


class TooManyFailuresError(UserError):
    """429: this address failed to log in too often; ``Retry-After`` says when to retry."""

    status = 429


@attrs.define
class Authenticator:
    directory: Directory
    realm: str
    limiter: FailureLimiter
    _verified_key: bytes = attrs.field(factory=lambda: secrets.token_bytes(32))
    _verified: dict[str, bytes] = attrs.field(factory=dict)
    _decoy_hash: str = attrs.field(factory=lambda: hash_password(secrets.token_hex(16)))
    #: Guards ``limiter`` (``_verified`` takes single dict operations, atomic as such).
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def challenge(self) -> dict[str, str]:
        realm = self.realm.replace("\\", "\\\\").replace('"', '\\"')
        return {"WWW-Authenticate": f'Basic realm="{realm}"'}

    def authenticate(self, request: HttpRequest) -> Identity:
        """The caller, or an error: 401 with the Basic challenge, 429 after too many failures."""
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.strip().partition(" ")
        if not header:
            raise NotAuthenticatedError("Not Authenticated", headers=self.challenge)
        client = request.client_address or "unknown"
        with self._lock:
            wait = self.limiter.retry_after(client)
        if wait is not None:
            raise TooManyFailuresError(
                f"Too many failed logins from {client}; retry in {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )
        user = self._check(scheme.lower(), credentials.strip())
        if user is None:
            with self._lock:
                self.limiter.failed(client)
            raise NotAuthenticatedError(INVALID_CREDENTIALS, headers=self.challenge)
        return Identity(user.name, attributes={"groups": ",".join(sorted(user.groups))})

    def _check(self, scheme: str, credentials: str) -> User | None:
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            name, sep, password = decoded.partition(":")
            user = self.directory.users.get(name)
            if not sep:
                return None
            if user is None:  # as slow as a wrong password: timing tells no user names
                verify_password(password, self._decoy_hash)
                return None
            return user if self._password_ok(user, password) else None
        if scheme == "bearer" and credentials:
            found = None
            for user in self.directory.users.values():  # check all: time says nothing
                for stored in user.token_hashes:
                    if token_matches(credentials, stored):
                        found = user
            return found
        return None

    def _password_ok(self, user: User, password: str) -> bool:
        mac = hmac.new(self._verified_key, password.encode(), hashlib.sha256).digest()
        known = self._verified.get(user.name)
        if known is not None and hmac.compare_digest(known, mac):
            return True
        if user.plain_password is not None:
            ok = hmac.compare_digest(
                hashlib.sha256(user.plain_password.encode()).digest(),
                hashlib.sha256(password.encode()).digest(),
            )
        elif user.password_hash is not None:
            ok = verify_password(password, user.password_hash)
        else:
            ok = False
        if ok:
            self._verified[user.name] = mac
        return ok
