"""Passwords and registered secrets are masked in logs, tracebacks and error lines."""

from __future__ import annotations

import io
import logging
import uuid

import pytest

from marathon_core.redaction import (
    RedactingFilter,
    redact,
    register_secret,
    register_url_password,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zk://marathon:s3cret@zk1:2181,zk2:2181/marathon", "zk://marathon:***@zk1:2181,zk2:2181/marathon"),
        ("master http://ops:p%40ss@10.0.0.1:5050 down", "master http://ops:***@10.0.0.1:5050 down"),
        ("zk://zk1:2181/marathon", "zk://zk1:2181/marathon"),
        ("http://user@host:8080/x", "http://user@host:8080/x"),
        ("at 12:30 user@example.com wrote", "at 12:30 user@example.com wrote"),
    ],
)  # fmt: skip
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def logged(*records: tuple[str, tuple[object, ...], bool]) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"test.redaction.{uuid.uuid4()}")
    logger.addHandler(handler)
    logger.propagate = False
    for message, args, with_traceback in records:
        if with_traceback:
            try:
                raise RuntimeError(f"failed with {args[0]}")
            except RuntimeError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    return stream.getvalue()


def test_registered_secrets_are_masked_in_messages_and_tracebacks() -> None:
    token = f"tok-{uuid.uuid4()}"
    register_secret(token)
    output = logged(("token %s refused", (token,), False), ("login with %s", (token,), True))
    assert token not in output
    assert output.count("***") == 3  # twice in the messages, once in the traceback


def test_a_url_password_is_masked_also_outside_its_url() -> None:
    password = f"pw-{uuid.uuid4()}"
    register_url_password(f"zk://marathon:{password}@127.0.0.1:2181/marathon")
    output = logged(("digest auth marathon:%s failed", (password,), False))
    assert password not in output


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert redact("tab stop") == "tab stop"
