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

import copy
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

import marathon_core.model.schema as schema
from marathon_core.errors import INVALID_JSON, BadRequestError, ValidationError, Violation
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
from marathon_core.model.health import Health
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    Instance,
    InstanceId,
    Task,
    TaskId,
    parse_instance_id,
    parse_task_id,
)
from marathon_core.model.normalize import READ_ONLY_APP_KEYS, normalize_app
from marathon_core.model.validation import (
    ValidationContext,
    prefixed,
    validate_app,
    validate_group,
)

__all__ = [
    "AppRollback",
    "GroupPart",
    "GroupUpdate",
    "app_to_json",
    "converter",
    "deployment_to_json",
    "from_storage",
    "group_to_json",
    "health_to_json",
    "instance_to_json",
    "parse_app",
    "parse_app_update",
    "parse_group",
    "parse_group_update",
    "task_failure_to_json",
    "task_to_json",
    "to_storage",
    "wire_name",
]

T = TypeVar("T")
_ROOT = PathId.root()

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


def _structure_path_id(obj: Any, _: Any) -> PathId:
    # Normalisation hands over ids it already resolved.
    return obj if obj.__class__ is PathId else PathId.parse(obj)


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
    conv.register_structure_hook(PathId, _structure_path_id)
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


def task_failure_to_json(
    instance: Instance,
    *,
    task_id: str,
    state: str,
    agent_id: str | None,
    message: str | None,
    at: Timestamp,
) -> dict[str, Any]:
    """Marathon's ``lastTaskFailure``: the failure update ``state`` of ``instance``'s task.

    ``instanceId`` names the instance the failed task belonged to (marathon-python's
    ``MarathonTaskFailure.instance_id``), so a client can find its replacement. Stored
    failures written before it existed lack it and are served as stored.
    """
    agent = instance.agent
    return {
        "appId": str(instance.app_id),
        "instanceId": str(instance.instance_id),
        "host": agent.host if agent is not None else "",
        "message": message if message is not None else "",
        "state": state,
        "taskId": task_id,
        "timestamp": str(at),
        "version": str(instance.run_spec_version) if instance.run_spec_version else None,
        "slaveId": agent_id if agent_id is not None else "",
    }


def health_to_json(health: Health) -> dict[str, Any]:
    """Marathon's ``healthCheckResults`` entry of one task under one check."""

    def ts(t: Timestamp | None) -> str | None:
        return str(t) if t is not None else None

    return {
        "alive": health.alive,
        "consecutiveFailures": health.consecutive_failures,
        "firstSuccess": ts(health.first_success),
        "lastFailure": ts(health.last_failure),
        "lastSuccess": ts(health.last_success),
        "lastFailureCause": health.last_failure_cause,
        "instanceId": str(health.instance_id),
    }


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


# -- request pipelines -----------------------------------------------------------------


@attrs.frozen
class AppRollback:
    """``PUT /v2/apps/{id}`` with only ``version``: go back to that stored version."""

    app_id: PathId
    version: Timestamp


#: The parts of a group a ``PUT /v2/groups`` body may give or leave out.
GroupPart = Literal["apps", "groups", "dependencies"]
_GROUP_PARTS: tuple[GroupPart, ...] = ("apps", "groups", "dependencies")


@attrs.frozen
class GroupUpdate:
    """A parsed ``PUT /v2/groups`` body: which parts of each group were given, and how.

    ``group`` holds the parsed tree (absent ``apps``/``groups``/``dependencies`` are
    empty there; ``given`` tells "absent: keep what exists" from "empty", for the top
    group and every subgroup the body names, since Marathon merges each by that rule).
    ``version`` alone asks for a rollback, ``scale_by`` alone for scaling every app.
    """

    group: Group
    given: Mapping[PathId, frozenset[GroupPart]] = attrs.field(factory=dict)
    version: Timestamp | None = None
    scale_by: float | None = None
    enforce_role: bool | None = None

    def gives(self, group_id: PathId, part: GroupPart) -> bool:
        """Whether the body gave ``part`` for the group ``group_id``."""
        return part in self.given.get(group_id, frozenset())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Non-standard token '{name}'")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def load_json(body: bytes | str | Mapping[str, Any]) -> Any:
    """Parse a request body; 400 for empty or malformed JSON (never anything else).

    A Mapping is deep-copied, since the pipeline normalises in place.
    """
    if isinstance(body, Mapping):
        return copy.deepcopy(dict(body))
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        if not text.strip():
            raise BadRequestError("Please specify data in JSON format", "Empty request body")
        return _decoder.decode(text)
    except json.JSONDecodeError as e:
        raise BadRequestError(INVALID_JSON, str(e)) from None
    except RecursionError:
        raise BadRequestError(INVALID_JSON, "JSON nesting is too deep") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequestError(INVALID_JSON, str(e)) from None


def _structure(d: Mapping[str, Any], cls: type[T], path: str) -> T:
    try:
        return converter.structure(d, cls)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as e:  # pragma: no cover
        # Shape checks should make this unreachable; answer 422, never 500.
        raise ValidationError(
            [Violation(path or "/", f"{type(e).__name__}: {e}")], message=INVALID_JSON
        ) from None


def _build_app(
    d: dict[str, Any], ctx: ValidationContext, base: PathId, path: str, errs: list[Violation]
) -> AppDefinition | None:
    """Normalise, structure and validate one shape-checked app dict; problems go to errs."""
    d, problems = normalize_app(d, ctx, base=base)
    if problems:
        errs.extend(prefixed(path or "/", problems) if path else problems)
        return None
    app = _structure(d, AppDefinition, path)
    problems = validate_app(app, ctx)
    if problems:
        errs.extend(prefixed(path, problems) if path else problems)
    return app


def _guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except RecursionError:
        raise BadRequestError(INVALID_JSON, "JSON nesting is too deep") from None


def parse_app(
    body: bytes | str | Mapping[str, Any],
    *,
    context: ValidationContext,
    base: PathId = _ROOT,
) -> AppDefinition:
    """The whole ``POST /v2/apps`` pipeline: JSON -> shape -> normalise -> validate.

    Raises BadRequestError (400) or ValidationError (422, every problem at once).
    Service ports stay 0; versions are stamped by the caller.
    """
    d = load_json(body)
    return _guarded(lambda: _parse_app_dict(d, context, base, schema.APP))


def _parse_app_dict(
    d: Any, ctx: ValidationContext, base: PathId, node: schema.Node
) -> AppDefinition:
    shape = schema.check(node, d)
    if shape:
        raise ValidationError(shape, message=INVALID_JSON)
    errs: list[Violation] = []
    app = _build_app(d, ctx, base, "", errs)
    if errs or app is None:
        raise ValidationError(errs)
    return app


def parse_app_update(
    body: bytes | str | Mapping[str, Any],
    *,
    context: ValidationContext,
    app_id: PathId,
    current: AppDefinition | None = None,
) -> AppDefinition | AppRollback:
    """``PUT``/``PATCH /v2/apps/{id}``: the fields given override ``current``.

    Read-only fields a client echoes back (tasks, counts, deployments, versionInfo) are
    ignored. ``version`` (with at most ``id``) is a rollback request. Without a
    current app the body must describe a whole app (PUT creates it).
    """
    d = load_json(body)
    return _guarded(lambda: _parse_app_update_dict(d, context, app_id, current))


def _parse_app_update_dict(
    d: Any, ctx: ValidationContext, app_id: PathId, current: AppDefinition | None
) -> AppDefinition | AppRollback:
    shape = schema.check(schema.APP_UPDATE, d)
    if shape:
        raise ValidationError(shape, message=INVALID_JSON)
    for key in READ_ONLY_APP_KEYS:
        d.pop(key, None)
    if d.get("version") is not None:
        if set(d) - {"id", "version"}:
            raise ValidationError(
                [Violation("/", "The 'version' field may only be combined with the 'id' field.")]
            )
        return AppRollback(app_id, Timestamp.parse(d["version"]))
    d.pop("version", None)
    d["id"] = str(app_id)
    if current is not None:
        merged = app_to_json(current)
        for key in ("version", "versionInfo"):
            merged.pop(key, None)
        # A deprecated field replaces its canonical successor, as a new request would.
        replaced = {
            "ports": ("portDefinitions",),
            "uris": ("fetch",),
            "ipAddress": ("networks",),
            "networks": ("portDefinitions",) if "portDefinitions" not in d else (),
        }
        for key, drops in replaced.items():
            if key in d:
                for drop in drops:
                    merged.pop(drop, None)
        container = d.get("container")
        if isinstance(container, dict):
            docker = container.get("docker")
            if isinstance(docker, dict) and "network" in docker:
                merged.pop("networks", None)
            if isinstance(docker, dict) and "portMappings" in docker:
                container.pop("portMappings", None)
        merged.update(d)
        d = merged
    return _parse_app_dict(d, ctx, _ROOT, schema.APP)


def parse_group(
    body: bytes | str | Mapping[str, Any],
    *,
    context: ValidationContext,
    base: PathId = _ROOT,
) -> Group:
    """``POST``/``PUT /v2/groups[/{id}]`` body as a group tree (relative ids resolved
    against the enclosing group; ``base`` is the group named in the URL)."""
    return parse_group_update(body, context=context, base=base).group


def parse_group_update(
    body: bytes | str | Mapping[str, Any],
    *,
    context: ValidationContext,
    base: PathId = _ROOT,
) -> GroupUpdate:
    """Like :func:`parse_group`, keeping which parts were given and ``version``/``scaleBy``."""
    d = load_json(body)
    return _guarded(lambda: _parse_group_dict(d, context, base))


def _parse_group_dict(d: Any, ctx: ValidationContext, base: PathId) -> GroupUpdate:
    shape = schema.check(schema.GROUP, d)
    if shape:
        raise ValidationError(shape, message=INVALID_JSON)
    version = d.get("version")
    scale_by = d.get("scaleBy")
    given = {k for k, v in d.items() if v is not None} - {"id"}
    if version is not None and given - {"version"}:
        raise ValidationError(
            [Violation("/version", "not allowed in conjunction with other properties.")]
        )
    if scale_by is not None and given - {"scaleBy"}:
        raise ValidationError(
            [Violation("/scaleBy", "not allowed in conjunction with other properties.")]
        )
    gid = PathId.parse(d["id"], base=base) if d.get("id") is not None else base
    errs: list[Violation] = []
    parts: dict[PathId, frozenset[GroupPart]] = {}
    group = _build_group(d, ctx, gid, "", errs, parts)
    if not errs:
        errs.extend(validate_group(group))
    if errs:
        raise ValidationError(errs)
    return GroupUpdate(
        group,
        parts,
        version=Timestamp.parse(version) if version is not None else None,
        scale_by=float(scale_by) if scale_by is not None else None,
        enforce_role=d.get("enforceRole"),
    )


def _build_group(
    d: dict[str, Any],
    ctx: ValidationContext,
    gid: PathId,
    path: str,
    errs: list[Violation],
    given: dict[PathId, frozenset[GroupPart]],
) -> Group:
    given[gid] = frozenset(part for part in _GROUP_PARTS if d.get(part) is not None)
    apps: list[AppDefinition] = []
    for i, a in enumerate(d.get("apps") or ()):
        ap = f"{path}/apps({i})"
        app_id = PathId.parse(a["id"], base=gid)
        if app_id.parent != gid or app_id.is_root:
            errs.append(Violation(f"{ap}/id", f"Identifier is not child of '{gid}'"))
            continue
        app = _build_app(a, ctx, gid, ap, errs)
        if app is not None:
            apps.append(app)
    groups: list[Group] = []
    for j, g in enumerate(d.get("groups") or ()):
        gp = f"{path}/groups({j})"
        if g.get("id") is None:
            errs.append(Violation(f"{gp}/id", "error.path.missing"))
            continue
        sid = PathId.parse(g["id"], base=gid)
        if sid.parent != gid or sid.is_root:
            errs.append(Violation(f"{gp}/id", f"Identifier is not child of '{gid}'"))
            continue
        groups.append(_build_group(g, ctx, sid, gp, errs, given))
    deps = tuple(PathId.parse(x, base=gid) for x in d.get("dependencies") or ())
    return Group(
        gid,
        apps=tuple(apps),
        groups=tuple(groups),
        dependencies=deps,
        enforce_role=bool(d.get("enforceRole", False)),
    )
