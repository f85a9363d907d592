"""The vocabulary of API authentication and authorization plugins.

Frontends describe each request with :class:`HttpRequest`, ask the
``marathon_authenticate`` hook who is calling and the ``marathon_authorize`` hook
whether that caller may perform an :class:`Action` on a :data:`Resource`. The names
are Marathon's, so an authorizer written against Marathon's plugin interface maps
one to one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

__all__ = ["ANONYMOUS", "Action", "HttpRequest", "Identity", "Resource", "SystemResource"]


class Action(enum.StrEnum):
    """What a caller wants to do; ``*RunSpec`` and ``*Group`` act on paths."""

    CREATE_RUN_SPEC = "CreateRunSpec"
    UPDATE_RUN_SPEC = "UpdateRunSpec"
    DELETE_RUN_SPEC = "DeleteRunSpec"
    VIEW_RUN_SPEC = "ViewRunSpec"
    CREATE_GROUP = "CreateGroup"
    UPDATE_GROUP = "UpdateGroup"
    DELETE_GROUP = "DeleteGroup"
    VIEW_GROUP = "ViewGroup"
    CREATE_RESOURCE = "CreateResource"
    UPDATE_RESOURCE = "UpdateResource"
    DELETE_RESOURCE = "DeleteResource"
    VIEW_RESOURCE = "ViewResource"


class SystemResource(enum.StrEnum):
    """Resources that are not apps or groups (Marathon's ``AuthorizedResource``)."""

    LEADER = "Leader"
    EVENTS = "Events"
    SYSTEM_METRICS = "SystemMetrics"
    SYSTEM_CONFIG = "SystemConfig"
    PLUGINS = "Plugins"


#: An app or group path such as ``/prod/web``, or a system resource.
Resource = str | SystemResource


@attrs.frozen
class Identity:
    """Who is calling; ``authenticated=False`` makes the frontend answer 401."""

    name: str
    authenticated: bool = True
    attributes: Mapping[str, str] = attrs.field(factory=dict)


#: The identity of every caller when no authentication plugin is installed.
ANONYMOUS = Identity("anonymous")


class HttpRequest(Protocol):
    """A framework-neutral, read-only view of an API request."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Header names in lower case."""
        ...

    @property
    def query(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def client_address(self) -> str | None: ...
