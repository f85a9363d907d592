"""Hook implementations of marathon-ui: its pages as routes of the REST frontend."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Mount

from marathon_core import hookimpl
from marathon_ui.views import ROUTES


@hookimpl(optionalhook=True)  # marathon-rest's hook: nothing to serve without it
def marathon_rest_routes() -> Sequence[BaseRoute]:
    return [Mount("/ui", routes=ROUTES)]
