"""Service-port assignment: the one normalisation step that needs cluster state."""

from __future__ import annotations

import attrs

from marathon_core.model.app import AppDefinition

__all__ = ["NoFreeServicePortError", "assign_service_ports"]


class NoFreeServicePortError(ValueError):
    """The service-port range is exhausted."""


def assign_service_ports(
    app: AppDefinition, used: set[int], *, port_range: tuple[int, int] = (10000, 20000)
) -> AppDefinition:
    """Replace every 0 service port of ``app`` by the lowest free port in ``port_range``
    (inclusive) that is not in ``used`` nor taken by the app itself.

    Pure: ``used`` is not modified; the deployment layer passes the ports of all other
    apps and records the result. Raises NoFreeServicePortError when the range is full.
    """
    lo, hi = port_range
    taken = set(used)
    taken.update(p for p in app.service_ports if p)
    candidate = lo

    def next_free() -> int:
        nonlocal candidate
        while candidate in taken:
            candidate += 1
        if candidate > hi:
            raise NoFreeServicePortError(f"no free service port in [{lo}, {hi}]")
        taken.add(candidate)
        return candidate

    if app.is_host_networking:
        if all(p.port for p in app.port_definitions):
            return app
        pds = tuple(
            p if p.port else attrs.evolve(p, port=next_free()) for p in app.port_definitions
        )
        return attrs.evolve(app, port_definitions=pds)
    container = app.container
    if container is None or all(m.service_port for m in container.port_mappings):
        return app
    mappings = tuple(
        m if m.service_port else attrs.evolve(m, service_port=next_free())
        for m in container.port_mappings
    )
    return attrs.evolve(app, container=attrs.evolve(container, port_mappings=mappings))
