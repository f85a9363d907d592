"""The one cattrs converter: Marathon JSON <-> model objects.

This module is the only place that maps attribute names to JSON keys (camelCase on the
wire, snake_case in Python), through hook factories for every attrs class, in the style
of lsprotocol's ``_hooks.py``. On top of it sit:

* the request pipelines ``parse_app`` / ``parse_group`` / ``parse_app_update``
  (parse JSON -> shape checks -> normalisation -> semantic validation), which raise
  :mod:`marathon_core.errors` types only;
* the output forms ``app_to_json`` / ``group_to_json`` / ``task_to_json`` /
  ``instance_to_json`` / ``deployment_to_json`` (what the REST API returns);
* ``to_storage`` / ``from_storage``: a compact lossless form for the state layer,
  trusted on the way back in (no validation).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from marathon_core.model.app import (
    AppDefinition,
    Constraint,
    EnvSecret,
    ExternalVolume,
    HostVolume,
    Network,
    PersistentVolume,
    PortDefinition,
    PortMapping,
    SecretVolume,
    UnreachableStrategy,
    Volume,
)
from marathon_core.model.deployment import Deployment, DeploymentAction
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    Instance,
    InstanceId,
    Task,
    TaskId,
    parse_instance_id,
    parse_task_id,
)

__all__ = [
    "app_to_json",
    "converter",
    "deployment_to_json",
    "from_storage",
    "group_to_json",
    "instance_to_json",
    "task_to_json",
    "to_storage",
    "wire_name",
]

T = TypeVar("T")

# -- JSON names ------------------------------------------------------------------------

_CAMEL_RE = re.compile(r"_([a-z0-9])")

#: Attributes whose JSON key is not the plain camelCase of their name.
_RENAMES: dict[tuple[type, str], str] = {
    (DeploymentAction, "app_id"): "app",
}

#: Attributes left out of the JSON when they hold their default, besides every
#: attribute whose default is None (Marathon omits unset optional fields, and
#: marathon-python rejects keys it does not know, e.g. ``tty``, ``check``).
_OMIT_WHEN_DEFAULT: set[tuple[type, str]] = {
    (PortDefinition, "labels"),
    (PortMapping, "labels"),
    (PortMapping, "network_names"),
    (Network, "labels"),
}


def wire_name(cls: type, attr: str) -> str:
    """The JSON key of attribute ``attr`` of model class ``cls``."""
    return _RENAMES.get((cls, attr)) or _CAMEL_RE.sub(lambda m: m.group(1).upper(), attr)


def _omit(cls: type, a: attrs.Attribute[Any]) -> bool:
    return a.default is None or (cls, a.name) in _OMIT_WHEN_DEFAULT


# -- the converter ---------------------------------------------------------------------


def _unstructure_factory(conv: cattrs.Converter) -> Callable[[type], Any]:
    def factory(cls: type) -> Any:
        overrides: dict[str, Any] = {
            a.name: override(rename=wire_name(cls, a.name), omit_if_default=_omit(cls, a))
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **overrides)

    return factory


def _structure_factory(conv: cattrs.Converter) -> Callable[[type], Any]:
    def factory(cls: type) -> Any:
        overrides: dict[str, Any] = {
            a.name: override(rename=wire_name(cls, a.name)) for a in attrs.fields(cls)
        }
        return make_dict_structure_fn(cls, conv, **overrides)

    return factory


def _structure_volume(obj: Mapping[str, Any], _: Any) -> Volume:
    if "persistent" in obj:
        return converter.structure(obj, PersistentVolume)
    if "external" in obj:
        return converter.structure(obj, ExternalVolume)
    if "secret" in obj:
        return converter.structure(obj, SecretVolume)
    return converter.structure(obj, HostVolume)


def _structure_env_value(obj: Any, _: Any) -> str | EnvSecret:
    if isinstance(obj, dict):
        return EnvSecret(obj["secret"])
    return str(obj)


def _structure_constraint(obj: Any, _: Any) -> Constraint:
    return Constraint(obj[0], obj[1], obj[2] if len(obj) > 2 else None)


def _unstructure_constraint(c: Constraint) -> list[str]:
    return [c.field, c.operator] if c.value is None else [c.field, c.operator, c.value]


def _structure_unreachable(obj: Any, _: Any) -> UnreachableStrategy:
    if obj == "disabled":
        return UnreachableStrategy.disabled()
    return UnreachableStrategy(
        True, int(obj["inactiveAfterSeconds"]), int(obj["expungeAfterSeconds"])
    )


def _unstructure_unreachable(u: UnreachableStrategy) -> Any:
    if not u.enabled:
        return "disabled"
    return {
        "inactiveAfterSeconds": u.inactive_after_seconds,
        "expungeAfterSeconds": u.expunge_after_seconds,
    }


def _passthrough(obj: Any, _: Any) -> Any:
    return obj


def _tuple_to_list(t: tuple[Any, ...]) -> list[Any]:
    return [converter.unstructure(x) for x in t]


def make_converter() -> cattrs.Converter:
    """Build the converter; called once at import (building hooks is the slow part)."""
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_unstructure_hook_factory(attrs.has, _unstructure_factory(conv))
    conv.register_structure_hook_factory(attrs.has, _structure_factory(conv))
    # Leaf values with a string form on the wire.
    conv.register_structure_hook(PathId, lambda v, _: PathId.parse(v))
    conv.register_unstructure_hook(PathId, str)
    conv.register_structure_hook(Timestamp, lambda v, _: Timestamp.parse(v))
    conv.register_unstructure_hook(Timestamp, str)
    conv.register_structure_hook(InstanceId, lambda v, _: parse_instance_id(v))
    conv.register_unstructure_hook(InstanceId, str)
    conv.register_structure_hook(TaskId, lambda v, _: parse_task_id(v))
    conv.register_unstructure_hook(TaskId, str)
    # Marathon's odd shapes.
    conv.register_structure_hook(Constraint, _structure_constraint)
    conv.register_unstructure_hook(Constraint, _unstructure_constraint)
    conv.register_structure_hook(UnreachableStrategy, _structure_unreachable)
    conv.register_unstructure_hook(UnreachableStrategy, _unstructure_unreachable)
    # Unions, disambiguated by shape (lsprotocol's (type, hook) pairs).
    unions: list[tuple[Any, Callable[[Any, Any], Any]]] = [
        (Volume, _structure_volume),
        (str | EnvSecret, _structure_env_value),
        (float | str | None, _passthrough),
        (str | float | None, _passthrough),
    ]
    for tp, hook in unions:
        conv.register_structure_hook(tp, hook)
    conv.register_unstructure_hook(Volume, lambda v: conv.unstructure(v, v.__class__))
    conv.register_unstructure_hook(
        str | EnvSecret, lambda v: v if isinstance(v, str) else {"secret": v.secret}
    )
    return conv


converter = make_converter()
# JSON has no tuples: emit lists so that output compares equal to parsed JSON.
converter.register_unstructure_hook_func(
    lambda t: t is tuple or getattr(t, "__origin__", None) is tuple, _tuple_to_list
)

# -- storage ---------------------------------------------------------------------------

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


def to_storage(obj: AppDefinition | Group | Instance | Deployment) -> bytes:
    """Serialise a model value for the state store (compact, lossless)."""
    return _dumps(converter.unstructure(obj)).encode()


def from_storage(cls: type[T], data: bytes) -> T:
    """Read back what :func:`to_storage` wrote. Trusted input: no validation."""
    return converter.structure(_loads(data), cls)


# -- API output ------------------------------------------------------------------------


def app_to_json(app: AppDefinition) -> dict[str, Any]:
    """The app as ``GET /v2/apps/{id}`` shows it (without the embedded task counts).

    Unset optional fields are left out; ``portDefinitions`` only in host networking.
    """
    out: dict[str, Any] = converter.unstructure(app)
    if not app.is_host_networking:
        out.pop("portDefinitions", None)
    return out


def group_to_json(group: Group) -> dict[str, Any]:
    """The group as ``GET /v2/groups`` shows it: ``enforceRole`` is never sent
    (marathon-python 0.13 rejects it), ``pods`` is always an empty list."""
    return {
        "id": str(group.id),
        "apps": [app_to_json(a) for a in group.apps],
        "groups": [group_to_json(g) for g in group.groups],
        "pods": [],
        "dependencies": [str(d) for d in group.dependencies],
        **({"version": str(group.version)} if group.version is not None else {}),
    }


def task_to_json(
    instance: Instance,
    task: Task,
    *,
    app: AppDefinition | None = None,
    health_check_results: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A task as ``/v2/tasks`` and ``/v2/apps/{id}/tasks`` show it (marathon-python keys).

    ``servicePorts`` is as long as ``ports`` whenever the app is known, because
    marathon-python pairs them index by index.
    """
    agent = instance.agent
    out: dict[str, Any] = {
        "id": str(task.task_id),
        "appId": str(instance.app_id),
        "host": agent.host if agent is not None else "",
        "ports": list(task.host_ports),
        "servicePorts": list(app.service_ports) if app is not None else [],
        "slaveId": agent.agent_id if agent is not None else None,
        "state": task.mesos_state or task.condition.mesos_state,
        "ipAddresses": [{"ipAddress": ip, "protocol": "IPv4"} for ip in task.ip_addresses],
        "role": instance.role,
    }
    version = task.run_spec_version or instance.run_spec_version
    if version is not None:
        out["version"] = str(version)
    if task.staged_at is not None:
        out["stagedAt"] = str(task.staged_at)
    if task.started_at is not None:
        out["startedAt"] = str(task.started_at)
    if health_check_results is not None:
        out["healthCheckResults"] = health_check_results
    if agent is not None:
        if agent.region is not None:
            out["region"] = agent.region
        if agent.zone is not None:
            out["zone"] = agent.zone
    return out


def instance_to_json(instance: Instance) -> dict[str, Any]:
    """An instance with its agent and tasks (events and debugging views)."""
    out: dict[str, Any] = converter.unstructure(instance)
    out["id"] = out.pop("instanceId")
    out["appId"] = str(instance.app_id)
    return out


def deployment_to_json(deployment: Deployment) -> dict[str, Any]:
    """A deployment as ``GET /v2/deployments`` lists it."""

    def action(a: DeploymentAction) -> dict[str, Any]:
        return {"action": a.action.value, "app": str(a.app_id)}

    return {
        "id": deployment.id,
        "version": str(deployment.version),
        "affectedApps": sorted(str(a) for a in deployment.affected_app_ids()),
        "affectedPods": [],
        "steps": [{"actions": [action(a) for a in s.actions]} for s in deployment.steps],
        "currentActions": [
            {**action(a), "readinessCheckResults": []} for a in deployment.current_actions
        ],
        "currentStep": deployment.current_step,
        "totalSteps": deployment.total_steps,
    }
