"""Mesos v1 scheduler events, decoded once at the client into typed, frozen values.

Mesos speaks JSON (``mesos.v1.scheduler.Event``); the rest of the core reads only
these values, so field names and nesting (``{"task_id": {"value": ...}}``) live here
and in the protos, nowhere else. The scheduler uses a fraction of each message: a
value carries what it reads, and :func:`decode_event` ignores the rest. Event types
the scheduler has no use for (inverse offers, executor messages, operation status
updates) decode to None.

One thing stays raw JSON on purpose: :attr:`Resource.echoed`, the reservation and
allocation fields a launch must repeat from the offered resource exactly as Mesos
sent them (the master compares them with the offer); decoding and re-encoding them
could only lose what a newer master adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from marathon_core.contracts.placement import format_attribute

__all__ = [
    "ECHOED_FIELDS",
    "Disconnected",
    "Error",
    "Failure",
    "Heartbeat",
    "MalformedEvent",
    "MesosEvent",
    "Offer",
    "Offers",
    "Rescind",
    "Resource",
    "Subscribed",
    "TaskStatus",
    "Update",
    "decode_event",
    "decode_offer",
    "decode_status",
]

Json = dict[str, Any]

#: Fields of an offered resource that a launch echoes verbatim (see the module docstring).
ECHOED_FIELDS = ("role", "allocation_info", "reservations", "reservation")


class MalformedEvent(ValueError):
    """An event lacks a field the protocol requires: the stream is not to be trusted."""


@attrs.frozen
class Subscribed:
    framework_id: str
    #: ``master_info.hostname`` ("" when the master did not say).
    master_hostname: str = ""
    heartbeat_interval_seconds: float | None = None


@attrs.frozen
class Resource:
    """One offered resource: what matching reads, plus the fields a launch echoes."""

    name: str
    #: ``SCALAR``, ``RANGES`` or ``SET``.
    type: str
    scalar: float | None = None
    ranges: tuple[tuple[int, int], ...] = ()
    #: The role of the last reservation (``*`` when unreserved).
    reservation_role: str = "*"
    revocable: bool = False
    #: A persistent volume (``disk.persistence``): never for plain apps.
    persistent: bool = False
    #: Mesos JSON, verbatim: ``role``, ``allocation_info``, ``reservations``, ``reservation``.
    echoed: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class Offer:
    id: str
    agent_id: str
    hostname: str
    #: ``allocation_info.role``: the role the offer was made to.
    role: str = "*"
    resources: tuple[Resource, ...] = ()
    #: Agent attributes as constraint operators see them (the first of a repeated name wins).
    attributes: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    region: str | None = None
    zone: str | None = None


@attrs.frozen
class Offers:
    offers: tuple[Offer, ...] = ()


@attrs.frozen
class TaskStatus:
    task_id: str
    #: The ``TASK_*`` name.
    state: str
    agent_id: str | None = None
    #: Base64, echoed unchanged by ACKNOWLEDGE; None for updates the master made up.
    uuid: str | None = None
    reason: str | None = None
    message: str | None = None
    source: str | None = None
    healthy: bool | None = None
    timestamp: float | None = None
    #: Every ``container_status.network_infos[].ip_addresses[].ip_address``, in order.
    ip_addresses: tuple[str, ...] = ()


@attrs.frozen
class Update:
    status: TaskStatus


@attrs.frozen
class Rescind:
    offer_id: str


@attrs.frozen
class Failure:
    """An agent (no ``executor_id``) or an executor failed."""

    agent_id: str | None = None
    executor_id: str | None = None
    status: int | None = None


@attrs.frozen
class Error:
    """Mesos ended the subscription for good (framework removed, failed over)."""

    message: str = ""


@attrs.frozen
class Heartbeat:
    pass


@attrs.frozen
class Disconnected:
    """Not a Mesos event: the client's note that the subscription stream ended, so
    outstanding offers are void."""


MesosEvent = Subscribed | Offers | Update | Rescind | Failure | Error | Heartbeat | Disconnected


def _value(message: Mapping[str, Any], field: str) -> str | None:
    """The string of an id message (``{"value": ...}``), None when the field is absent."""
    wrapped = message.get(field)
    return None if wrapped is None else str(wrapped["value"])


def _required(message: Mapping[str, Any], field: str) -> str:
    value = _value(message, field)
    if value is None:
        raise MalformedEvent(f"missing {field}")
    return value


def _text(message: Mapping[str, Any], field: str) -> str | None:
    value = message.get(field)
    return None if value is None else str(value)


def _resource(resource: Mapping[str, Any]) -> Resource:
    reservations = resource.get("reservations")
    role = (
        str(reservations[-1].get("role", "*")) if reservations else str(resource.get("role", "*"))
    )
    scalar = resource.get("scalar")
    ranges = resource.get("ranges", {}).get("range", ())
    return Resource(
        name=str(resource["name"]),
        type=str(resource["type"]),
        scalar=float(scalar["value"]) if scalar is not None else None,
        ranges=tuple((int(r["begin"]), int(r["end"])) for r in ranges),
        reservation_role=role,
        revocable=resource.get("revocable") is not None,
        persistent=bool(resource.get("disk", {}).get("persistence")),
        echoed={key: resource[key] for key in ECHOED_FIELDS if key in resource},
    )


def decode_offer(offer: Mapping[str, Any]) -> Offer:
    """An ``Offer``; raises :class:`MalformedEvent` when a required field is missing."""
    try:
        attributes: dict[str, str] = {}
        for attribute in offer.get("attributes", ()):
            attributes.setdefault(str(attribute["name"]), format_attribute(attribute))
        fault_domain = offer.get("domain", {}).get("fault_domain")
        return Offer(
            id=_required(offer, "id"),
            agent_id=_required(offer, "agent_id"),
            hostname=str(offer["hostname"]),
            role=str(offer.get("allocation_info", {}).get("role", "*")),
            resources=tuple(_resource(r) for r in offer.get("resources", ())),
            attributes=attributes,
            region=str(fault_domain["region"]["name"]) if fault_domain else None,
            zone=str(fault_domain["zone"]["name"]) if fault_domain else None,
        )
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"offer without {exc}") from exc


def decode_status(status: Mapping[str, Any]) -> TaskStatus:
    """A ``TaskStatus``; raises :class:`MalformedEvent` when a required field is missing."""
    try:
        networks = status.get("container_status", {}).get("network_infos", ())
        timestamp = status.get("timestamp")
        healthy = status.get("healthy")
        return TaskStatus(
            task_id=_required(status, "task_id"),
            state=str(status["state"]),
            agent_id=_value(status, "agent_id"),
            uuid=_text(status, "uuid"),
            reason=_text(status, "reason"),
            message=_text(status, "message"),
            source=_text(status, "source"),
            healthy=bool(healthy) if healthy is not None else None,
            timestamp=float(timestamp) if timestamp is not None else None,
            ip_addresses=tuple(
                str(ip["ip_address"])
                for network in networks
                for ip in network.get("ip_addresses", ())
                if "ip_address" in ip
            ),
        )
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"task status without {exc}") from exc


def _subscribed(body: Mapping[str, Any]) -> Subscribed:
    interval = body.get("heartbeat_interval_seconds")
    return Subscribed(
        framework_id=_required(body, "framework_id"),
        master_hostname=str(body.get("master_info", {}).get("hostname", "")),
        heartbeat_interval_seconds=float(interval) if interval is not None else None,
    )


def _failure(body: Mapping[str, Any]) -> Failure:
    status = body.get("status")
    return Failure(
        agent_id=_value(body, "agent_id"),
        executor_id=_value(body, "executor_id"),
        status=int(status) if status is not None else None,
    )


def decode_event(event: Mapping[str, Any]) -> MesosEvent | None:
    """One ``mesos.v1.scheduler.Event``; None for types the scheduler does not use.

    Raises :class:`MalformedEvent` when a field the protocol requires is missing.
    """
    kind = event.get("type")
    try:
        if kind == "UPDATE":
            return Update(decode_status(event["update"]["status"]))
        if kind == "OFFERS":
            return Offers(tuple(decode_offer(o) for o in event["offers"].get("offers", ())))
        if kind == "RESCIND":
            return Rescind(_required(event["rescind"], "offer_id"))
        if kind == "SUBSCRIBED":
            return _subscribed(event["subscribed"])
        if kind == "FAILURE":
            return _failure(event.get("failure", {}))
        if kind == "ERROR":
            return Error(str(event.get("error", {}).get("message", "")))
        if kind == "HEARTBEAT":
            return Heartbeat()
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"{kind} event without {exc}") from exc
    return None
