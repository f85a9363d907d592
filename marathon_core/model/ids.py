"""Path ids and timestamps: the two value types every other model builds on.

Marathon names apps and groups with slash-separated paths (``/prod/web``) and stamps
every version with an ISO-8601 UTC time in milliseconds (``2015-09-29T15:59:51.164Z``);
clients parse both strictly, so they live here once.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import time

import attrs

__all__ = [
    "ID_PATTERN",
    "RESERVED_LAST_SEGMENTS",
    "SEGMENT_PATTERN",
    "PathId",
    "Timestamp",
]

#: One id segment as Marathon's model validation states it (``.``/``..`` are resolved later).
SEGMENT_PATTERN = (
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$"
)
#: The whole-string pattern the JSON layer checks first (``error.pattern``).
ID_PATTERN = (
    r"^(\/?((\.\.)|(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*"
    r"([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9]))?($|\/))+$"
)
#: Last segments that would collide with REST sub-resources.
RESERVED_LAST_SEGMENTS = ("restart", "tasks", "versions", ".", "..")

_LABEL = r"(?:[a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])"
_SEGMENT_RE = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}|\.|\.\.")
# The JSON-level pattern, rewritten without nested repetition so that a 10 MB id
# cannot make the regex engine backtrack for minutes: segments of labels or "..",
# separated by single slashes, optional leading/trailing slash.
_ID_SEG = rf"(?:\.\.|(?:{_LABEL}\.)*{_LABEL})"
_ID_RE = re.compile(rf"/?(?:{_ID_SEG}(?:/{_ID_SEG})*/?)?")


def valid_id_string(text: str) -> bool:
    """True when ``text`` passes Marathon's JSON-level id pattern."""
    return _ID_RE.fullmatch(text) is not None


def valid_segment(segment: str) -> bool:
    """True when one path segment fully matches :data:`SEGMENT_PATTERN`."""
    return _SEGMENT_RE.fullmatch(segment) is not None


@attrs.frozen(order=True, repr=False, cache_hash=True)
class PathId:
    """An app or group id: segments plus whether it is absolute (``/a/b``) or relative."""

    path: tuple[str, ...] = ()
    absolute: bool = True

    @classmethod
    def parse(cls, text: str, *, base: PathId | None = None) -> PathId:
        """Parse ``text``; a relative id is resolved against ``base`` when given.

        Leading/trailing slashes and empty segments are dropped, as Marathon does.
        ``.``/``..`` segments are kept until :meth:`canonical` (or ``base``) resolves them.
        """
        absolute = text.startswith("/")
        segments = tuple(s for s in text.split("/") if s)
        pid = cls(segments, absolute)
        if base is not None:
            return pid.resolve(base)
        return pid

    @classmethod
    def root(cls) -> PathId:
        return _ROOT

    @property
    def is_root(self) -> bool:
        return not self.path

    @property
    def name(self) -> str:
        """The last segment (``""`` for the root)."""
        return self.path[-1] if self.path else ""

    @property
    def parent(self) -> PathId:
        """The enclosing group's id; the root is its own parent."""
        if not self.path:
            return self
        return PathId(self.path[:-1], self.absolute)

    def child(self, name: str) -> PathId:
        return PathId((*self.path, name), self.absolute)

    def canonical(self) -> PathId:
        """Resolve ``.`` and ``..`` segments (``..`` above the root stays at the root)."""
        if "." not in self.path and ".." not in self.path:
            return self
        out: list[str] = []
        for seg in self.path:
            if seg == ".":
                continue
            if seg == "..":
                if out:
                    out.pop()
                continue
            out.append(seg)
        return PathId(tuple(out), self.absolute)

    def resolve(self, base: PathId) -> PathId:
        """This id made absolute against ``base`` (a no-op for absolute ids), canonicalised."""
        if self.absolute:
            return self.canonical()
        return PathId((*base.path, *self.path), True).canonical()

    def is_child_of(self, other: PathId) -> bool:
        """True when ``other`` is a strict ancestor of this id."""
        n = len(other.path)
        return len(self.path) > n and self.path[:n] == other.path

    def includes(self, other: PathId) -> bool:
        """True when ``other`` is this id or below it."""
        n = len(self.path)
        return other.path[:n] == self.path

    @property
    def safe_id(self) -> str:
        """Segments joined with ``_``: the form used in task ids and storage keys."""
        return "_".join(self.path)

    @classmethod
    def from_safe_id(cls, safe: str) -> PathId:
        return cls(tuple(s for s in safe.split("_") if s), True)

    def __str__(self) -> str:
        joined = "/".join(self.path)
        return "/" + joined if self.absolute else joined

    def __repr__(self) -> str:
        return f"PathId({str(self)!r})"


_ROOT = PathId((), True)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


@functools.lru_cache(maxsize=4096)
def _wire_form(millis: int) -> str:
    """Memoised: an instance record repeats a few instants (its app version, when it
    was staged, started, changed), and storing it formats them all each time."""
    dt = _EPOCH + _dt.timedelta(milliseconds=millis)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


@attrs.frozen(order=True, repr=False)
class Timestamp:
    """A UTC instant with millisecond precision; ``str()`` is Marathon's wire form.

    Clients (marathon-python) only accept ``YYYY-MM-DDTHH:MM:SS.fffZ``, never
    ``+00:00``, so formatting is owned here.
    """

    millis: int

    @classmethod
    def now(cls) -> Timestamp:
        return cls(time.time_ns() // 1_000_000)

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse ISO-8601 (``Z`` or an offset; naive means UTC); raises ValueError."""
        if len(text) > 64:
            raise ValueError("timestamp too long")
        return cls.from_datetime(_dt.datetime.fromisoformat(text))

    @classmethod
    def from_datetime(cls, dt: _dt.datetime) -> Timestamp:
        """The instant ``dt`` names (naive means UTC)."""
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=_dt.UTC)
        delta = dt - _EPOCH
        return cls((delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000)

    def to_datetime(self) -> _dt.datetime:
        return _EPOCH + _dt.timedelta(milliseconds=self.millis)

    @property
    def seconds(self) -> float:
        return self.millis / 1000.0

    def __str__(self) -> str:
        return _wire_form(self.millis)

    def __repr__(self) -> str:
        return f"Timestamp({str(self)!r})"
