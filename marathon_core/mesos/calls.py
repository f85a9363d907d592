"""Builders of Mesos v1 scheduler ``Call`` messages (JSON form) and of our FrameworkInfo.

One function per call type, typed, so call sites cannot misspell a field; every
builder's output parses into the real ``mesos.v1.scheduler.Call`` proto (checked by
``tests/test_mesos_contract.py``). Ids are plain strings here and wrapped as
``{"value": ...}`` on the way out. The framework id is filled in by the client.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from marathon_core.config import Config

__all__ = [
    "Json",
    "accept",
    "acknowledge",
    "decline",
    "default_task_user",
    "framework_info",
    "framework_user",
    "kill",
    "reconcile",
    "revive",
    "subscribe",
    "suppress",
    "teardown",
]

Json = dict[str, Any]


def _id(value: str) -> dict[str, str]:
    return {"value": value}


def _filters(refuse_seconds: float | None) -> Json:
    return {} if refuse_seconds is None else {"filters": {"refuse_seconds": refuse_seconds}}


#: The framework's user on the embedded cluster (``--master local``) when Marathon runs
#: as root and ``--mesos_user`` names no one.
EMBEDDED_TASK_USER = "nobody"


def default_task_user(config: Config) -> str | None:
    """Who runs the tasks whose app names no ``user``; None: the framework's user.

    ``--mesos_user``; else, on the embedded cluster, ``nobody`` when ``marathon`` runs
    as root, so no task runs as root unless an app's ``user`` or ``--mesos_user`` asks
    for it. Put in ``CommandInfo.user`` too, so it holds for a framework registered
    before (Mesos keeps a framework's user across re-subscriptions). A non-root
    ``marathon``, whose agents cannot switch users, keeps its own user.
    """
    if config.mesos_user:
        return config.mesos_user
    if config.master == "local" and os.geteuid() == 0:
        return EMBEDDED_TASK_USER
    return None


def framework_user(config: Config) -> str:
    """FrameworkInfo.user: :func:`default_task_user`, else ``marathon``'s own user."""
    return default_task_user(config) or getpass.getuser()


def framework_info(config: Config, *, framework_id: str | None = None) -> Json:
    """FrameworkInfo as Marathon registers: MULTI_ROLE with ``--mesos_role``, PARTITION_AWARE.

    PARTITION_AWARE makes agent loss arrive as TASK_UNREACHABLE (not TASK_LOST), which
    the unreachable strategy needs; checkpointing keeps tasks over agent restarts.
    """
    capabilities = ["MULTI_ROLE", "PARTITION_AWARE", "REGION_AWARE"]
    if "task_killing" in config.features:
        capabilities.append("TASK_KILLING_STATE")
    if "gpu_resources" in config.features:
        capabilities.append("GPU_RESOURCES")
    info: Json = {
        "user": framework_user(config),
        "name": config.framework_name,
        "roles": [config.mesos_role],
        "failover_timeout": float(config.failover_timeout),
        "checkpoint": bool(config.checkpoint),
        "hostname": config.hostname,
        "capabilities": [{"type": c} for c in capabilities],
    }
    if config.webui_url:
        info["webui_url"] = config.webui_url
    if config.mesos_authentication_principal:
        info["principal"] = config.mesos_authentication_principal
    if framework_id is not None:
        info["id"] = _id(framework_id)
    return info


def subscribe(info: Mapping[str, Any], *, suppressed_roles: Sequence[str] = ()) -> Json:
    """SUBSCRIBE; a re-subscription repeats the id at the top level, as Mesos requires."""
    call: Json = {"type": "SUBSCRIBE", "subscribe": {"framework_info": dict(info)}}
    if suppressed_roles:
        call["subscribe"]["suppressed_roles"] = list(suppressed_roles)
    if "id" in info:
        call["framework_id"] = dict(info["id"])
    return call


def accept(
    offer_ids: Sequence[str],
    task_infos: Sequence[Mapping[str, Any]],
    *,
    refuse_seconds: float | None = None,
) -> Json:
    """ACCEPT with one LAUNCH of ``task_infos`` (all offers must be of one agent)."""
    return {
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [_id(o) for o in offer_ids],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(task_infos)}}],
            **_filters(refuse_seconds),
        },
    }


def decline(offer_ids: Sequence[str], *, refuse_seconds: float | None = None) -> Json:
    return {
        "type": "DECLINE",
        "decline": {"offer_ids": [_id(o) for o in offer_ids], **_filters(refuse_seconds)},
    }


def kill(
    task_id: str, *, agent_id: str | None = None, grace_period_seconds: float | None = None
) -> Json:
    """KILL; ``grace_period_seconds`` overrides the task's kill policy for this kill."""
    body: Json = {"task_id": _id(task_id)}
    if agent_id is not None:
        body["agent_id"] = _id(agent_id)
    if grace_period_seconds is not None:
        nanos = int(grace_period_seconds * 1_000_000_000)
        body["kill_policy"] = {"grace_period": {"nanoseconds": nanos}}
    return {"type": "KILL", "kill": body}


def acknowledge(agent_id: str, task_id: str, uuid: str) -> Json:
    """ACKNOWLEDGE an update; ``uuid`` is echoed exactly as received (base64)."""
    return {
        "type": "ACKNOWLEDGE",
        "acknowledge": {"agent_id": _id(agent_id), "task_id": _id(task_id), "uuid": uuid},
    }


def reconcile(tasks: Iterable[tuple[str, str | None]] = ()) -> Json:
    """RECONCILE ``(task id, agent id or None)`` pairs; none at all is implicit."""
    entries: list[Json] = []
    for task_id, agent_id in tasks:
        entry: Json = {"task_id": _id(task_id)}
        if agent_id is not None:
            entry["agent_id"] = _id(agent_id)
        entries.append(entry)
    return {"type": "RECONCILE", "reconcile": {"tasks": entries}}


def revive(roles: Sequence[str] = ()) -> Json:
    """REVIVE: lift suppression and clear every refuse filter of ``roles`` (all if empty)."""
    return {"type": "REVIVE", "revive": {"roles": list(roles)}}


def suppress(roles: Sequence[str] = ()) -> Json:
    return {"type": "SUPPRESS", "suppress": {"roles": list(roles)}}


def teardown() -> Json:
    return {"type": "TEARDOWN"}
