"""Hooks of marathon-rest for other plugins: how they add pages and endpoints to the API.

marathon-rest adds these specs to the plugin host (``marathon_addhooks``), so a plugin
implements them with :data:`marathon_core.hookimpl` like any core hook. Routes added
here sit behind the same layers as ``/v2``: standby forwarding, authentication,
auditing of writes, CORS, request limits and Marathon's headers. Handlers reach the
server with ``marathon_rest.api.Api.of(request)`` and decide what the caller may see
with :mod:`marathon_rest.auth` (``allowed``, ``authorize``, ``visible_part``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy
from starlette.routing import BaseRoute

from marathon_core import PROJECT_NAME

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def marathon_rest_routes() -> Sequence[BaseRoute] | None:
    """Starlette routes or mounts to serve beside ``/v2`` (e.g. ``Mount("/ui", ...)``).

    They are matched after the API's own routes, so they cannot shadow ``/v2``; a
    plugin keeps to a prefix of its own.
    """
