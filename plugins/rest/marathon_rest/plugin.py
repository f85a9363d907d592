"""Hook implementations of marathon-rest."""

from __future__ import annotations

from marathon_core import hookimpl
from marathon_core.service import Service, ServiceContext
from marathon_rest.server import serve_api


@hookimpl
def marathon_services(ctx: ServiceContext) -> dict[str, Service]:
    return {"rest-api": serve_api}
