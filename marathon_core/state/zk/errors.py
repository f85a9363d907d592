"""kazoo's exceptions -> the core's; only code in worker threads sees kazoo's."""

from __future__ import annotations

from kazoo import exceptions as ke
from kazoo.handlers.threading import KazooTimeoutError

from marathon_core.errors import (
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    VersionConflictError,
)

__all__ = ["KAZOO_ERRORS", "map_kazoo_error"]

#: Every exception a kazoo call raises: :meth:`ZkClient.call` maps them all.
KAZOO_ERRORS = (ke.KazooException, KazooTimeoutError)


def map_kazoo_error(exc: BaseException) -> StorageError | NotFoundError:
    """The core error for a kazoo error."""
    if isinstance(exc, ke.NoNodeError):
        return NotFoundError(f"zookeeper: no node ({exc})")
    if isinstance(exc, ke.BadVersionError | ke.NodeExistsError | ke.NotEmptyError):
        return VersionConflictError(f"zookeeper: {type(exc).__name__}")
    if isinstance(
        exc,
        KazooTimeoutError
        | ke.ConnectionLoss
        | ke.SessionExpiredError
        | ke.OperationTimeoutError
        | ke.ZookeeperStoppedError
        | ke.ConnectionDropped,
    ):
        return StorageUnavailableError(f"zookeeper unavailable: {type(exc).__name__}")
    return StorageError(f"zookeeper: {type(exc).__name__}: {exc}")
