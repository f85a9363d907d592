"""Passwords, the users file, rules and the failure limiter, without a server."""

from __future__ import annotations

import base64
from pathlib import Path

import attrs
import pytest

from marathon_auth.authenticator import Authenticator, TooManyFailuresError
from marathon_auth.directory import Directory, build_directory
from marathon_auth.limiter import FailureLimiter
from marathon_auth.passwords import hash_password, hash_token, token_matches, verify_password
from marathon_core.contracts.auth import Action, SystemResource
from marathon_core.errors import ConfigError, NotAuthenticatedError

from .conftest import ADMIN, PROD, READER, READER_TOKEN, users_file_text  # type: ignore[import-not-found]


def test_password_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("pw", first) and verify_password("pw", second)
    assert not verify_password("pW", first)


def test_tokens_are_stored_hashed() -> None:
    stored = hash_token("t0k3n")
    assert "t0k3n" not in stored
    assert token_matches("t0k3n", stored) and not token_matches("t0k3m", stored)


def directory(
    tmp_path: Path, text: str | None = None, credentials: str | None = ":".join(ADMIN)
) -> Directory:
    path = tmp_path / "users.toml"
    path.write_text(users_file_text() if text is None else text)
    found = build_directory(path, credentials)
    assert found is not None
    return found


def test_without_flags_the_plugin_stays_out() -> None:
    assert build_directory(None, None) is None


def test_rules_deny_by_default_and_match_path_prefixes(tmp_path: Path) -> None:
    d = directory(tmp_path)
    assert d.may("admin", Action.DELETE_GROUP, "/")
    assert d.may("reader", Action.VIEW_RUN_SPEC, "/dev/api")
    assert d.may("reader", Action.VIEW_RESOURCE, SystemResource.LEADER)
    assert not d.may("reader", Action.UPDATE_RUN_SPEC, "/dev/api")
    assert not d.may("reader", Action.UPDATE_RESOURCE, SystemResource.LEADER)
    assert d.may("produser", Action.CREATE_RUN_SPEC, "/prod/web")
    assert d.may("produser", Action.DELETE_GROUP, "/prod")
    assert not d.may("produser", Action.VIEW_RUN_SPEC, "/production")  # a prefix of segments
    assert not d.may("produser", Action.VIEW_RUN_SPEC, "/dev/api")
    assert not d.may("produser", Action.VIEW_GROUP, "/")
    assert d.may("produser", Action.VIEW_RESOURCE, SystemResource.EVENTS)
    assert not d.may("produser", Action.VIEW_RESOURCE, SystemResource.SYSTEM_METRICS)
    assert not d.may("nobody", Action.VIEW_RUN_SPEC, "/prod/web")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[users.a]\npassword = 'plain'\n", "users.a: password: expected scrypt$"),
        ("[users.a]\ntokens = ['abc']\n", "tokens hold sha256$<hex>"),
        ("[users.a]\nrole = 'x'\n", "unknown keys ['role']"),
        ("[[rules]]\nactions = ['fly']\n", "unknown action 'fly'"),
        ("[[rules]]\nresources = ['prod']\n", "resource 'prod' is neither a path"),
        ("[groups]\n", "unknown tables ['groups']"),
        ("[users.a\n", "--auth_users"),
    ],
)
def test_users_file_mistakes_are_config_errors(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint.replace("$", r"\$").replace("[", r"\[")):
        directory(tmp_path, text, credentials=None)


def test_http_credentials_must_be_user_colon_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="user:password"):
        build_directory(None, "justauser")


def test_limiter_counts_failures_per_address_within_the_window() -> None:
    now = [1000.0]
    limiter = FailureLimiter(max_failures=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.failed("10.0.0.1")
        now[0] += 1
    assert limiter.retry_after("10.0.0.1") == 57
    assert limiter.retry_after("10.0.0.2") is None
    now[0] += 57
    assert limiter.retry_after("10.0.0.1") is None


@attrs.frozen
class Request:
    headers: dict[str, str]
    method: str = "GET"
    path: str = "/v2/apps"
    query: dict[str, list[str]] = attrs.field(factory=dict)
    client_address: str | None = "127.0.0.1"


def basic(user: str, password: str) -> Request:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return Request({"authorization": f"Basic {encoded}"})


def test_authenticator_accepts_basic_and_bearer_and_locks_out_guessers(tmp_path: Path) -> None:
    auth = Authenticator(directory(tmp_path), "R", FailureLimiter(2, 60))
    assert auth.authenticate(basic(*READER)).name == "reader"
    assert auth.authenticate(basic(*READER)).name == "reader"  # remembered, same answer
    assert auth.authenticate(basic(*ADMIN)).name == "admin"
    assert auth.authenticate(basic(*PROD)).attributes == {"groups": "prod-team"}
    bearer = Request({"authorization": f"Bearer {READER_TOKEN}"})
    assert auth.authenticate(bearer).name == "reader"
    malformed = ("Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Digest x")
    for number, header in enumerate(malformed):
        with pytest.raises(NotAuthenticatedError) as caught:
            auth.authenticate(Request({"authorization": header}, client_address=f"10.1.1.{number}"))
        assert caught.value.headers == {"WWW-Authenticate": 'Basic realm="R"'}
    with pytest.raises(NotAuthenticatedError, match=r"Invalid username or password\."):
        auth.authenticate(basic("reader", "wrong"))
    with pytest.raises(NotAuthenticatedError):
        auth.authenticate(basic("reader", "wrong"))
    with pytest.raises(TooManyFailuresError) as locked:  # even the right password now
        auth.authenticate(basic(*READER))
    assert locked.value.status == 429 and 59 <= int(locked.value.headers["Retry-After"]) <= 60
    with pytest.raises(NotAuthenticatedError, match="Not Authenticated"):
        auth.authenticate(Request({}))  # no credentials: a challenge, never a lockout


def test_unknown_users_get_the_answer_of_a_wrong_password(tmp_path: Path) -> None:
    auth = Authenticator(directory(tmp_path), "R", FailureLimiter(5, 60))
    with pytest.raises(NotAuthenticatedError, match=r"Invalid username or password\."):
        auth.authenticate(basic("ghost", "whatever"))
