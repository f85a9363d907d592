"""The login pieces on their own: the session store's expiry and logout, the cookie's
flags, which requests are pages, which paths are public, and where a login may go."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from marathon_rest.auth import RequestView
from marathon_ui.login import authorization_header, is_browser_page, is_public, safe_next
from marathon_ui.sessions import (
    COOKIE_NAME,
    SessionStore,
    clear_session_cookie,
    set_session_cookie,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock, **kwargs: Any) -> SessionStore:
    return SessionStore(idle=60, lifetime=300, clock=clock, **kwargs)


def test_a_session_lives_while_used_and_ends_when_idle() -> None:
    clock = Clock()
    sessions = store(clock)
    session_id = sessions.create("Basic abc", "alice")
    assert len(session_id) >= 43  # 32 random bytes, base64
    for _ in range(4):
        clock.now += 59
        found = sessions.get(session_id)
        assert found is not None and found.user == "alice"
        assert found.authorization == "Basic abc"
    clock.now += 60
    assert sessions.get(session_id) is None
    assert len(sessions) == 0


def test_a_session_ends_at_its_lifetime_however_busy() -> None:
    clock = Clock()
    sessions = store(clock)
    session_id = sessions.create("Bearer t", "alice")
    while clock.now < 1000 + 299:
        clock.now = min(clock.now + 50, 1000 + 299)
        assert sessions.get(session_id) is not None
    clock.now = 1000 + 300
    assert sessions.get(session_id) is None


def test_logout_ends_only_that_session_and_ids_are_not_guessable() -> None:
    clock = Clock()
    sessions = store(clock)
    first, second = sessions.create("Basic a", "a"), sessions.create("Basic a", "a")
    assert first != second
    sessions.end(first)
    sessions.end("no-such-session")
    assert sessions.get(first) is None
    assert sessions.get(second) is not None
    assert sessions.get("") is None and sessions.get(second[:-1]) is None


def test_the_store_keeps_a_bounded_number_of_sessions_and_no_credentials_in_repr() -> None:
    clock = Clock()
    sessions = store(clock, max_sessions=3)
    ids = [sessions.create(f"Basic {n}", f"user{n}") for n in range(5)]
    assert len(sessions) == 3
    assert [sessions.get(i) is not None for i in ids] == [False, False, True, True, True]
    found = sessions.get(ids[-1])
    assert found is not None and "Basic" not in repr(found)


def request(scheme: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": scheme,
            "path": "/ui/login",
            "headers": [(b"host", b"marathon.example")],
            "query_string": b"",
            "server": ("marathon.example", 443 if scheme == "https" else 80),
        }
    )


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_cookie_is_http_only_same_site_strict_for_the_whole_site(scheme: str) -> None:
    response = Response()
    set_session_cookie(response, request(scheme), "the-id", 28800)
    cookie = response.headers["set-cookie"]
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert parts[0] == f"{COOKIE_NAME}=the-id"
    assert {"httponly", "path=/", "samesite=strict", "max-age=28800"} <= set(parts)
    assert ("secure" in parts) == (scheme == "https")
    assert not any(p.startswith("domain") for p in parts)  # this host only

    cleared = Response()
    clear_session_cookie(cleared, request(scheme))
    gone = [p.strip().lower() for p in cleared.headers["set-cookie"].split(";")]
    assert f'{COOKIE_NAME}=""' in gone and "max-age=0" in gone and "path=/" in gone


def view(method: str, path: str, **headers: str) -> RequestView:
    return RequestView(method, path, headers, {}, "127.0.0.1")


def test_pages_are_what_a_browser_navigates_to_under_ui() -> None:
    headers = {"accept": "text/html", "sec-fetch-mode": "navigate"}
    for path in ("/ui", "/ui/", "/ui/apps", "/ui/apps/a/b", "/ui/edit/a", "/ui/events"):
        assert is_browser_page(RequestView("GET", path, headers, {}, None)), path
    for path in ("/v2/apps", "/ui/f/app-rows", "/ui/f/app-page", "/ui/stream", "/uix"):
        assert not is_browser_page(RequestView("GET", path, headers, {}, None)), path
    assert not is_browser_page(RequestView("POST", "/ui/apps", headers, {}, None))
    # A script's fetch (Accept: text/html for fragments) is no navigation.
    assert not is_browser_page(
        view("GET", "/ui/apps", accept="text/html", **{"sec-fetch-mode": "cors"})
    )
    # Without Fetch Metadata, Accept decides.
    assert is_browser_page(view("GET", "/ui/apps", accept="text/html,*/*"))
    assert not is_browser_page(view("GET", "/ui/apps", accept="*/*"))


def test_only_the_form_logout_and_static_files_are_public() -> None:
    assert is_public(view("GET", "/ui/login")) and is_public(view("POST", "/ui/login"))
    assert is_public(view("POST", "/ui/logout")) and is_public(view("GET", "/ui/static/ui.css"))
    for method, path in [
        ("GET", "/ui/logout"),
        ("GET", "/ui/login/"),
        ("GET", "/ui/static/a/b"),
        ("GET", "/ui/static/"),
        ("POST", "/ui/static/ui.css"),
        ("GET", "/ui/apps"),
        ("GET", "/v2/apps"),
    ]:
        assert not is_public(view(method, path)), (method, path)


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/ui/apps/team-a/web", "/ui/apps/team-a/web"),
        ("/ui/apps?q=a&sort=-mem", "/ui/apps?q=a&sort=-mem"),
        ("/v2/info", "/v2/info"),
        (None, "/ui/apps"),
        ("", "/ui/apps"),
        ("//evil.example", "/ui/apps"),
        ("/\\evil.example", "/ui/apps"),
        ("https://evil.example/ui", "/ui/apps"),
        ("evil.example", "/ui/apps"),
        ("/ui/login?next=//evil", "/ui/apps"),
        ("/ui/logout", "/ui/apps"),
        ("/ui\r\nSet-Cookie: x=y", "/ui/apps"),
        ("/" + "a" * 3000, "/ui/apps"),
    ],
)
def test_a_login_goes_only_to_a_path_on_this_site(asked: str | None, goes_to: str) -> None:
    assert safe_next(asked) == goes_to


def test_the_form_makes_basic_or_bearer_headers() -> None:
    basic = authorization_header({"user": "alice", "password": "pä:ss"})
    assert basic is not None and basic.startswith("Basic ")
    assert base64.b64decode(basic.removeprefix("Basic ")).decode() == "alice:pä:ss"
    assert authorization_header({"user": "alice", "token": " tok "}) == "Bearer tok"
    for fields in (
        {},
        {"user": "", "password": "x"},
        {"user": "a:b", "password": "x"},
        {"user": "a\nb", "password": "x"},
        {"token": "tok\r\nX-Evil: 1"},
        {"token": "tökén"},
    ):
        assert authorization_header(fields) is None, fields
