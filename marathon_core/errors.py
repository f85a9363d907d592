"""The error hierarchy of marathon-core.

Errors a user caused carry the HTTP status and the JSON body Marathon answers with,
so every frontend maps them by type, never by message::

    MarathonError
      ├── UserError                  status, message, details -> Marathon's JSON error shape
      │     ├── BadRequestError      400  malformed or empty JSON, bad query parameters
      │     ├── NotAuthenticatedError 401 no acceptable credentials (auth plugins)
      │     ├── ForbiddenError       403  not allowed (auth plugins, deployment limit)
      │     ├── NotFoundError        404  unknown app, group, task, deployment
      │     ├── ConflictError        409  id exists already
      │     │     └── AppLockedError 409  locked by deployments (carries their ids)
      │     ├── ValidationError      422  "Invalid JSON" (shape) or "Object is not valid" (rules)
      │     ├── InvalidArgumentError 422  an argument Marathon rejects with only a message
      │     └── ServiceUnavailableError 503 no leader to act now; try again
      ├── PluginError                a plugin could not be loaded or misbehaves
      │     └── PluginConflictError  two plugins claim the same registry key
      ├── ConfigError                bad flags or environment; the server does not start
      └── StorageError               the state store failed
            ├── StorageUnavailableError  backend unreachable (retry later)
            ├── VersionConflictError     a conditional write lost a race
            ├── FencedWriteError         refused: this process no longer leads
            ├── StorageFormatError       stored data has an unknown format version
            └── WriteTooLargeError       422 too big for one atomic write (also a ValidationError)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "AppLockedError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "FencedWriteError",
    "ForbiddenError",
    "InvalidArgumentError",
    "MarathonError",
    "NotAuthenticatedError",
    "NotFoundError",
    "PluginConflictError",
    "PluginError",
    "ServiceUnavailableError",
    "StorageError",
    "StorageFormatError",
    "StorageUnavailableError",
    "UserError",
    "ValidationError",
    "VersionConflictError",
    "Violation",
    "WriteTooLargeError",
]

#: ``message`` of a 422 for a body whose JSON shape is wrong (types, ranges, patterns).
INVALID_JSON = "Invalid JSON"
#: ``message`` of a 422 for a well-formed body that breaks a semantic rule.
OBJECT_NOT_VALID = "Object is not valid"


@attrs.frozen
class Violation:
    """One broken rule: where (a Marathon path such as ``/healthChecks(0)``) and why."""

    path: str
    message: str


class MarathonError(Exception):
    """Base of every error marathon-core raises on purpose."""


class UserError(MarathonError):
    """The request cannot be served as asked; the client can fix it."""

    status: int = 400

    def __init__(
        self, message: str, details: Any = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        #: Response headers the answer needs (``WWW-Authenticate`` on a 401, ``Retry-After``).
        self.headers: Mapping[str, str] = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        """Marathon's error body: ``{"message": ..., "details": ...}`` (details when set)."""
        body: dict[str, Any] = {"message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequestError(UserError):
    """400: the body is not JSON, is empty, or a parameter cannot be parsed."""

    status = 400


class NotAuthenticatedError(UserError):
    """401: the request carries no credentials an authentication plugin accepts."""

    status = 401


class ForbiddenError(UserError):
    """403: the caller may not do this (or a limit such as running deployments is hit)."""

    status = 403


class NotFoundError(UserError):
    """404: the addressed object does not exist."""

    status = 404


class ConflictError(UserError):
    """409: the object exists already or is otherwise in the way."""

    status = 409


class AppLockedError(ConflictError):
    """409: running deployments touch the same apps; ``?force=true`` overrides."""

    def __init__(self, deployment_ids: Iterable[str]) -> None:
        self.deployment_ids = list(deployment_ids)
        where = ", ".join(f"'/v2/deployments/{d}'" for d in self.deployment_ids)
        super().__init__(
            "App is locked by one or more deployments. Override with the option "
            f"'?force=true'. View details at {where}."
        )

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "deployments": [{"id": d} for d in self.deployment_ids]}


class ValidationError(UserError):
    """422: every broken rule of a request at once, grouped by path as Marathon does."""

    status = 422

    def __init__(self, violations: Iterable[Violation], *, message: str = OBJECT_NOT_VALID) -> None:
        self.violations = list(violations)
        super().__init__(message, group_violations(self.violations))

    def __str__(self) -> str:
        lines = [f"{v.path}: {v.message}" for v in self.violations]
        return f"{self.message}: " + "; ".join(lines)


def group_violations(violations: Iterable[Violation]) -> list[dict[str, Any]]:
    """Marathon's ``details``: one entry per path, in first-seen order, errors de-duplicated."""
    grouped: dict[str, list[str]] = {}
    for v in violations:
        errors = grouped.setdefault(v.path, [])
        if v.message not in errors:
            errors.append(v.message)
    return [{"path": path, "errors": errors} for path, errors in grouped.items()]


class InvalidArgumentError(UserError):
    """422 with only a message: a label selector, version or other argument is unusable."""

    status = 422


class ServiceUnavailableError(UserError):
    """503: the request needs the leader's scheduler, and there is none right now."""

    status = 503


class PluginError(MarathonError):
    """A plugin failed to load or broke the plugin contract."""


class PluginConflictError(PluginError):
    """Two plugins registered the same key in one registry (operator, container type, ...)."""

    def __init__(self, registry: str, key: str, first: str, second: str) -> None:
        self.registry, self.key, self.first, self.second = registry, key, first, second
        super().__init__(f"{registry} {key!r} is provided by both {first} and {second}")


class ConfigError(MarathonError):
    """The command line or environment is unusable; the server does not start."""


class StorageError(MarathonError):
    """The state store failed."""


class StorageUnavailableError(StorageError):
    """The store cannot be reached now; the operation may succeed later."""


class VersionConflictError(StorageError):
    """A conditional write found another version than it expected."""


class FencedWriteError(StorageError):
    """A write was refused because its fence failed: this process no longer leads.

    Not a :class:`VersionConflictError`, so repositories do not retry it.
    """


class WriteTooLargeError(StorageError, ValidationError):
    """422: a change too large for one atomic write of the store; nothing was stored.

    Why a user error: ZooKeeper takes at most 1 MB per transaction, and a group
    change with thousands of apps is one transaction.  Applied in parts, it fits.
    """

    def __init__(self, why: str) -> None:
        ValidationError.__init__(
            self, [Violation("/", why)], message="The change is too large to store at once"
        )


class StorageFormatError(StorageError):
    """The stored data was written by an unknown (newer) storage format."""

    def __init__(self, found: int, supported: int) -> None:
        super().__init__(f"storage format version {found} is newer than the supported {supported}")
        self.found, self.supported = found, supported
