"""The UI's login sessions: a random id in a cookie names an ``Authorization`` header
kept in this process's memory only.

The browser never holds the credentials, only the id (256 random bits). The header is
checked again by the authentication plugins on every request (``login.SessionHooks``),
so a changed password or a removed user takes effect at once. A session ends after
``idle`` seconds unused, ``lifetime`` seconds after login, at logout, or when the
process stops (a new leader knows none: its users log in again).

The authentication hooks run in worker threads, several at once: the store is
guarded by a lock.
"""

from __future__ import annotations

import contextvars
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs
from starlette.requests import Request
from starlette.responses import Response

#: The cookie holding the session id.
COOKIE_NAME = "marathon_session"
#: Defaults of ``--ui_session_idle_timeout`` and ``--ui_session_lifetime`` (seconds).
IDLE_SECONDS = 3600.0
LIFETIME_SECONDS = 8 * 3600.0
#: Sessions kept at most: the oldest is dropped to make room (each takes a login).
MAX_SESSIONS = 10_000


@attrs.frozen
class Session:
    """A logged-in browser: the header its user logged in with, and when it expires."""

    authorization: str = attrs.field(repr=False)
    user: str
    created: float
    last_used: float


def _key(session_id: str) -> str:
    """What the store is keyed by: a hash, so a look-up's timing or a memory dump of
    the keys tells no cookie."""
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class SessionStore:
    """Sessions by id, with idle and absolute expiry."""

    def __init__(
        self,
        *,
        idle: float = IDLE_SECONDS,
        lifetime: float = LIFETIME_SECONDS,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # oldest login first
        self._lock = threading.Lock()

    def create(self, authorization: str, user: str) -> str:
        """A new session for ``authorization`` (already verified); returns its id."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._drop_expired(now)
            while len(self._sessions) >= self.max_sessions:
                self._sessions.popitem(last=False)
            self._sessions[_key(session_id)] = Session(authorization, user, now, now)
        return session_id

    def get(self, session_id: str) -> Session | None:
        """The live session ``session_id`` names (and marks it used), or None."""
        key = _key(session_id)
        now = self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[key]
                return None
            used = attrs.evolve(session, last_used=now)
            self._sessions[key] = used
            return used

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(_key(session_id), None)

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired(self.clock())
            return len(self._sessions)

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_used >= self.idle or now - session.created >= self.lifetime

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]


def session_id_of(cookies: dict[str, str]) -> str | None:
    return cookies.get(COOKIE_NAME) or None


def set_session_cookie(response: Response, request: Request, session_id: str, max_age: int) -> None:
    """The cookie: script cannot read it, other sites' requests do not carry it, and it
    travels over HTTPS only when the page came over HTTPS."""
    response.set_cookie(
        COOKIE_NAME,
        session_id,
        max_age=max_age,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


#: Who the page being rendered is for, when they logged in with the form (the header
#: then shows their name and a logout button).
SESSION_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "marathon_ui_session_user", default=None
)


def session_user() -> str | None:
    return SESSION_USER.get()
