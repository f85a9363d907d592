"""Checks a scheduler ``Call`` in Mesos JSON the way the master's JSON parser does.

Mesos turns the JSON body into a proto2 message before it looks at it: unknown keys
are ignored, ``null`` means unset, a wrong JSON type or a missing ``required`` field
is a ``400``, an unknown enum name is an error on a required field and dropped on an
optional one. This module carries just enough of the schema of ``scheduler.proto``
and ``mesos.proto`` (the fields the master reads) to give those answers without a
protobuf runtime. Messages the master passes through untouched (ContainerInfo,
HealthCheck, ...) are only checked to be JSON objects.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

__all__ = ["CALL_TYPES", "SchemaError", "check_call", "decode_uuid"]


class SchemaError(ValueError):
    """The JSON does not convert into the proto message."""


CALL_TYPES = frozenset(
    {
        "UNKNOWN", "SUBSCRIBE", "TEARDOWN", "ACCEPT", "DECLINE", "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS", "REVIVE", "KILL", "SHUTDOWN", "ACKNOWLEDGE",
        "ACKNOWLEDGE_OPERATION_STATUS", "RECONCILE", "RECONCILE_OPERATIONS", "MESSAGE",
        "REQUEST", "SUPPRESS", "UPDATE_FRAMEWORK",
    }
)  # fmt: skip
_VALUE_TYPES = frozenset({"SCALAR", "RANGES", "SET", "TEXT"})
_EXECUTOR_TYPES = frozenset({"UNKNOWN", "DEFAULT", "CUSTOM"})

# A field is (kind, label). Kinds: string, double, bool, int, bytes, object (opaque
# message), enum:<set name>, or the name of a message below. Labels: req, opt, rep.
_ID = {"value": ("string", "req")}
_MESSAGES: dict[str, dict[str, tuple[str, str]]] = {
    "Call": {
        "framework_id": ("ID", "opt"),
        "type": ("enum:call", "opt"),
        "subscribe": ("Subscribe", "opt"),
        "accept": ("Accept", "opt"),
        "decline": ("Decline", "opt"),
        "accept_inverse_offers": ("InverseOffers", "opt"),
        "decline_inverse_offers": ("InverseOffers", "opt"),
        "revive": ("Roles", "opt"),
        "kill": ("Kill", "opt"),
        "shutdown": ("Shutdown", "opt"),
        "acknowledge": ("Acknowledge", "opt"),
        "acknowledge_operation_status": ("AcknowledgeOperationStatus", "opt"),
        "reconcile": ("Reconcile", "opt"),
        "reconcile_operations": ("ReconcileOperations", "opt"),
        "message": ("Message", "opt"),
        "request": ("Request", "opt"),
        "suppress": ("Roles", "opt"),
        "update_framework": ("Subscribe", "opt"),
    },
    "ID": _ID,
    "Subscribe": {
        "framework_info": ("FrameworkInfo", "req"),
        "suppressed_roles": ("string", "rep"),
        "offer_constraints": ("object", "opt"),
    },
    "FrameworkInfo": {
        "user": ("string", "req"),
        "name": ("string", "req"),
        "id": ("ID", "opt"),
        "failover_timeout": ("double", "opt"),
        "checkpoint": ("bool", "opt"),
        "role": ("string", "opt"),
        "roles": ("string", "rep"),
        "hostname": ("string", "opt"),
        "principal": ("string", "opt"),
        "webui_url": ("string", "opt"),
        "capabilities": ("object", "rep"),
        "labels": ("Labels", "opt"),
        "offer_filters": ("object", "opt"),
    },
    "Labels": {"labels": ("Label", "rep")},
    "Label": {"key": ("string", "req"), "value": ("string", "opt")},
    "Accept": {
        "offer_ids": ("ID", "rep"),
        "operations": ("Operation", "rep"),
        "filters": ("Filters", "opt"),
    },
    "Decline": {"offer_ids": ("ID", "rep"), "filters": ("Filters", "opt")},
    "InverseOffers": {"inverse_offer_ids": ("ID", "rep"), "filters": ("Filters", "opt")},
    "Filters": {"refuse_seconds": ("double", "opt")},
    "Operation": {
        "type": ("object_enum", "opt"),
        "id": ("ID", "opt"),
        "launch": ("Launch", "opt"),
        "launch_group": ("LaunchGroup", "opt"),
    },
    "Launch": {"task_infos": ("TaskInfo", "rep")},
    "LaunchGroup": {
        "executor": ("ExecutorInfo", "req"),
        "task_group": ("TaskGroupInfo", "req"),
    },
    "TaskGroupInfo": {"tasks": ("TaskInfo", "rep")},
    "ExecutorInfo": {
        "type": ("enum:executor", "opt"),
        "executor_id": ("ID", "req"),
        "framework_id": ("ID", "opt"),
        "command": ("CommandInfo", "opt"),
        "container": ("object", "opt"),
        "resources": ("Resource", "rep"),
        "name": ("string", "opt"),
        "source": ("string", "opt"),
        "data": ("bytes", "opt"),
        "discovery": ("object", "opt"),
        "shutdown_grace_period": ("Duration", "opt"),
        "labels": ("Labels", "opt"),
    },
    "TaskInfo": {
        "name": ("string", "req"),
        "task_id": ("ID", "req"),
        "agent_id": ("ID", "req"),
        "resources": ("Resource", "rep"),
        "executor": ("ExecutorInfo", "opt"),
        "command": ("CommandInfo", "opt"),
        "container": ("object", "opt"),
        "health_check": ("object", "opt"),
        "check": ("object", "opt"),
        "kill_policy": ("KillPolicy", "opt"),
        "data": ("bytes", "opt"),
        "labels": ("Labels", "opt"),
        "discovery": ("object", "opt"),
        "max_completion_time": ("Duration", "opt"),
        "limits": ("object", "opt"),
    },
    "Resource": {
        "name": ("string", "req"),
        "type": ("enum:value", "req"),
        "scalar": ("Scalar", "opt"),
        "ranges": ("Ranges", "opt"),
        "set": ("Set", "opt"),
        "role": ("string", "opt"),
    },
    "Scalar": {"value": ("double", "req")},
    "Ranges": {"range": ("Range", "rep")},
    "Range": {"begin": ("int", "req"), "end": ("int", "req")},
    "Set": {"item": ("string", "rep")},
    "CommandInfo": {
        "uris": ("URI", "rep"),
        "environment": ("Environment", "opt"),
        "shell": ("bool", "opt"),
        "value": ("string", "opt"),
        "arguments": ("string", "rep"),
        "user": ("string", "opt"),
    },
    "URI": {
        "value": ("string", "req"),
        "executable": ("bool", "opt"),
        "extract": ("bool", "opt"),
        "cache": ("bool", "opt"),
        "output_file": ("string", "opt"),
    },
    "Environment": {"variables": ("Variable", "rep")},
    "Variable": {"name": ("string", "req"), "value": ("string", "opt")},
    "KillPolicy": {"grace_period": ("Duration", "opt")},
    "Duration": {"nanoseconds": ("int", "req")},
    "Roles": {"roles": ("string", "rep")},
    "Kill": {
        "task_id": ("ID", "req"),
        "agent_id": ("ID", "opt"),
        "kill_policy": ("KillPolicy", "opt"),
    },
    "Shutdown": {"executor_id": ("ID", "req"), "agent_id": ("ID", "req")},
    "Acknowledge": {
        "agent_id": ("ID", "req"),
        "task_id": ("ID", "req"),
        "uuid": ("bytes", "req"),
    },
    "AcknowledgeOperationStatus": {
        "agent_id": ("ID", "opt"),
        "uuid": ("bytes", "req"),
        "operation_id": ("ID", "req"),
    },
    "Reconcile": {"tasks": ("ReconcileTask", "rep")},
    "ReconcileTask": {"task_id": ("ID", "req"), "agent_id": ("ID", "opt")},
    "ReconcileOperations": {"operations": ("object", "rep")},
    "Message": {
        "agent_id": ("ID", "req"),
        "executor_id": ("ID", "req"),
        "data": ("bytes", "req"),
    },
    "Request": {"requests": ("object", "rep")},
}
_ENUMS = {"call": CALL_TYPES, "value": _VALUE_TYPES, "executor": _EXECUTOR_TYPES}


def check_call(value: Any) -> dict[str, Any]:
    """Check a parsed JSON body as a ``Call``; return it with unset (null) fields removed.

    :raises SchemaError: with Mesos's wording for the first problem found.
    """
    if not isinstance(value, dict):
        raise SchemaError("Expecting a JSON object")
    return _check_message(value, "Call", "")


def _check_message(value: Mapping[str, Any], name: str, prefix: str) -> dict[str, Any]:
    fields = _MESSAGES[name]
    out: dict[str, Any] = {}
    missing: list[str] = []
    for key, item in value.items():
        if key not in fields or item is None:
            continue  # unknown keys are ignored and null means unset, as in Mesos
        kind, label = fields[key]
        path = prefix + key
        if label == "rep":
            if not isinstance(item, list):
                raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
            converted = []
            for element in item:
                ok, result = _check_value(element, kind, path)
                if ok:
                    converted.append(result)
            out[key] = converted
        else:
            ok, result = _check_value(item, kind, path)
            if ok:
                out[key] = result
            elif label == "req":
                raise SchemaError(f"Failed to find enum for '{item}'")
    for key, (_, label) in fields.items():
        if label == "req" and key not in out:
            missing.append(prefix + key)
    if missing:
        raise SchemaError("Missing required fields: " + ", ".join(missing))
    return out


def _check_value(item: Any, kind: str, path: str) -> tuple[bool, Any]:
    """Return (kept, value); an unknown enum name on an optional field is dropped."""
    if kind == "string":
        if not isinstance(item, str):
            raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
        return True, item
    if kind in ("double", "int"):
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
        try:
            number = float(item) if kind == "double" else int(item)
        except ValueError:
            raise SchemaError(f"Failed to convert '{item}' for field '{path}'") from None
        return True, number
    if kind == "bool":
        if not isinstance(item, bool):
            raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
        return True, item
    if kind == "bytes":
        if not isinstance(item, str):
            raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
        try:
            base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise SchemaError(f"Failed to base64 decode field '{path}'") from None
        return True, item
    if kind.startswith("enum:"):
        if not isinstance(item, str):
            raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
        return item in _ENUMS[kind[5:]], item
    if kind in ("object", "object_enum"):
        if kind == "object_enum":
            return isinstance(item, str), item
        if not isinstance(item, dict):
            raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
        return True, item
    if not isinstance(item, dict):
        raise SchemaError(f"Not expecting a JSON {_json_kind(item)} for field '{path}'")
    return True, _check_message(item, kind, path + ".")


def _json_kind(item: Any) -> str:
    if isinstance(item, bool):
        return "boolean"
    if isinstance(item, dict):
        return "object"
    if isinstance(item, list):
        return "array"
    if isinstance(item, str):
        return "string"
    if isinstance(item, int | float):
        return "number"
    return "null"


def decode_uuid(value: str) -> bytes:
    """The raw bytes of a base64 ``uuid`` field."""
    return base64.b64decode(value)
