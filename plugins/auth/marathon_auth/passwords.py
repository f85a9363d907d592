"""Salted password hashes and hashed bearer tokens, standard library only.

Passwords are hashed with scrypt (``hashlib.scrypt``): it is memory-hard, so guessing
on GPUs or ASICs costs memory as well as time, which PBKDF2 does not; and it is in the
standard library (OpenSSL). A stored hash reads ``scrypt$<n>$<r>$<p>$<salt>$<hash>``
(base64), so the cost can be raised later without breaking stored hashes.

Bearer tokens are generated here with 256 random bits; a guess is as hopeless as a
brute-forced SHA-256, so a token is stored as its plain SHA-256 (``sha256$<hex>``),
which lets a request be checked in microseconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["hash_password", "hash_token", "new_token", "token_matches", "verify_password"]

#: scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB of memory, about 60 ms on one core.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
#: OpenSSL refuses scrypt above this memory unless told (we stay below, but allow 4x).
_MAX_MEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEM, dklen=_HASH_BYTES
    )


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` for the users file."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_password_hash(stored: str) -> None:
    """Raise ValueError unless ``stored`` is a hash :func:`hash_password` could have made."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("expected scrypt$<n>$<r>$<p>$<salt>$<hash> (marathon-auth-passwd)")
    n, r, p = (int(v) for v in parts[1:4])
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r * p > _MAX_MEM:
        raise ValueError("scrypt parameters out of range")
    base64.b64decode(parts[4], validate=True)
    base64.b64decode(parts[5], validate=True)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (compared in constant time)."""
    _, n, r, p, salt, digest = stored.split("$")
    computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(computed, base64.b64decode(digest))


def new_token() -> str:
    """A fresh bearer token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """How a bearer token is stored in the users file."""
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored: str) -> bool:
    """Whether ``token`` is the one ``stored`` was made from (constant time)."""
    return hmac.compare_digest(hash_token(token).encode(), stored.encode())
