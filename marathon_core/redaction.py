"""Secrets never reach the logs or the API: passwords in URLs, and registered secrets.

A URL's password (``zk://marathon:s3cret@zk1:2181/marathon``) is shown as ``***``
(``zk://marathon:***@zk1:2181/marathon``) wherever :func:`redact` runs: in
``/v2/info`` and in every log record, because the ``marathon`` command installs
:class:`RedactingFilter` on its log handlers. Secrets that are not in URLs
(passwords and tokens an auth plugin reads from a file, values a secrets plugin
resolves for a task's ``env``) are handed to :func:`register_secret` as soon as
they are read, and from then on replaced by ``***`` in every record, exception
tracebacks included.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = [
    "MASK",
    "RedactingFilter",
    "install_log_redaction",
    "redact",
    "register_secret",
    "register_url_password",
]

MASK = "***"
#: ``scheme://user:password@``: the password is what lies between ``:`` and ``@``.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s/@]+)(?=@)"
)
#: Shorter values would mask ordinary words and numbers all over the logs.
MIN_SECRET_LENGTH = 4

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask ``value`` in every log record from now on (values under 4 characters are not)."""
    if len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def register_url_password(url: str | None) -> None:
    """Register the password of ``url`` (``zk://user:password@...``), if it has one,
    so that it is masked also where it shows up outside the URL."""
    for match in _URL_PASSWORD.finditer(url or ""):
        register_secret(match.group("password"))


def redact(text: str) -> str:
    """``text`` with URL passwords and registered secrets replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leaks
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record's message and traceback before output."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Put :class:`RedactingFilter` on every handler of ``logger`` (the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
