"""The app form: a definition as form values, form fields back into a definition, and
which input a validation error's path names.

The form is one view of a definition, the JSON editor the other: the fields come back
merged onto the definition they were rendered from (``base``), so whatever the form
does not show (fetch URIs, volumes, a health check's ``delaySeconds``, secret env
values) is kept. Each row of a list the form shows carries ``origin``, its index in
the base list, so a row keeps its unknown keys however rows are added or removed.

Fields arrive as ``(name, value)`` pairs in document order (``FormData``); a row's
columns are named ``<list>.<column>`` and paired by their position.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Pairs = Sequence[tuple[str, str]]
#: An input of the form: its name and which of the inputs of that name (the row).
Field = tuple[str, int]

#: Top-level numbers and texts: name -> how a value is read back.
_INTEGERS = ("instances", "backoffSeconds", "maxLaunchDelaySeconds")
_FLOATS = ("cpus", "mem", "disk", "backoffFactor")
_TEXTS = ("id", "cmd", "user")
_UPGRADE = ("minimumHealthCapacity", "maximumOverCapacity")

#: Lists of objects the form shows as rows: list -> columns (``int`` ones are numbers).
ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    "env": ("key", "value"),
    "labels": ("key", "value"),
    "constraints": ("field", "operator", "value"),
    "portDefinitions": ("port", "protocol", "name"),
    "portMappings": ("containerPort", "hostPort", "servicePort", "protocol", "name"),
    "healthChecks": (
        "protocol",
        "path",
        "portIndex",
        "command",
        "gracePeriodSeconds",
        "intervalSeconds",
        "timeoutSeconds",
        "maxConsecutiveFailures",
    ),
}
_INTEGER_COLUMNS = frozenset(
    {
        "port",
        "containerPort",
        "hostPort",
        "servicePort",
        "portIndex",
        "gracePeriodSeconds",
        "intervalSeconds",
        "timeoutSeconds",
        "maxConsecutiveFailures",
    }
)
#: Lists whose rows are merged onto the base object they came from.
_OBJECT_LISTS = ("portDefinitions", "portMappings", "healthChecks")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(raw: str) -> Any:
    """A number typed into the form; what is not one goes through as typed, so the
    server's validation names it at its path."""
    try:
        value = float(raw)
    except ValueError:
        return raw
    return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value


def form_values(definition: dict[str, Any]) -> dict[str, Any]:
    """What the form shows of ``definition``: texts for inputs, lists of row dicts."""
    values: dict[str, Any] = {name: _text(definition.get(name)) for name in _TEXTS}
    values |= {name: _text(definition.get(name)) for name in _INTEGERS + _FLOATS}
    values["args"] = "\n".join(str(a) for a in definition.get("args") or [])
    upgrade = definition.get("upgradeStrategy") or {}
    for key in _UPGRADE:
        values[f"upgradeStrategy.{key}"] = _text(upgrade.get(key))
    container = definition.get("container") or {}
    values["container.type"] = _text(container.get("type"))
    values["container.docker.image"] = _text((container.get("docker") or {}).get("image"))
    network = (definition.get("networks") or [{}])[0]
    values["network"] = _text(network.get("mode"))
    values["network.name"] = _text(network.get("name"))
    env = definition.get("env") or {}
    labels = definition.get("labels") or {}
    rows: dict[str, list[dict[str, str]]] = {
        "env": [{"key": k, "value": v} for k, v in env.items() if isinstance(v, str)],
        "labels": [{"key": k, "value": _text(v)} for k, v in labels.items()],
        "constraints": [
            {
                column: _text(c[i]) if i < len(c) else ""
                for i, column in enumerate(ROW_COLUMNS["constraints"])
            }
            for c in definition.get("constraints") or []
        ],
    }
    lists = {
        "portDefinitions": definition.get("portDefinitions") or [],
        "portMappings": container.get("portMappings") or [],
        "healthChecks": definition.get("healthChecks") or [],
    }
    for name, items in lists.items():
        rows[name] = [
            {
                "origin": str(index),
                **{
                    column: _text(
                        (item.get("command") or {}).get("value")
                        if column == "command"
                        else item.get(column)
                    )
                    for column in ROW_COLUMNS[name]
                },
            }
            for index, item in enumerate(items)
        ]
    values["rows"] = rows
    return values


def blank_row(name: str) -> dict[str, str]:
    """The values of a row the user adds (``origin`` empty: it comes from no base entry)."""
    return {column: "" for column in ROW_COLUMNS[name]} | (
        {"origin": ""} if name in _OBJECT_LISTS else {}
    )


def _rows(fields: Pairs, name: str) -> list[dict[str, str]]:
    """The rows of list ``name`` in document order, blank rows included."""
    columns = (*ROW_COLUMNS[name], "origin")
    by_column = {c: [v for k, v in fields if k == f"{name}.{c}"] for c in columns}
    count = max(len(v) for v in by_column.values())
    return [
        {c: values[i] if i < len(values) else "" for c, values in by_column.items()}
        for i in range(count)
    ]


def _blank(row: dict[str, str]) -> bool:
    return not any(v.strip() for k, v in row.items() if k != "origin")


def _filled_rows(fields: Pairs, name: str) -> list[tuple[int, dict[str, str]]]:
    """The rows a definition gets (a row left blank is no entry), with their position."""
    return [(i, row) for i, row in enumerate(_rows(fields, name)) if not _blank(row)]


def _set(target: dict[str, Any], key: str, raw: str, read: Callable[[str], Any]) -> None:
    """Set ``key`` from an input; an emptied input removes it (the default applies)."""
    if raw.strip():
        target[key] = read(raw.strip())
    else:
        target.pop(key, None)


def _merge_object(base: dict[str, Any], row: dict[str, str], columns: Iterable[str]) -> None:
    for column in columns:
        raw = row[column]
        if column == "command":
            if raw.strip():
                base["command"] = {**(base.get("command") or {}), "value": raw}
            else:
                base.pop("command", None)
        else:
            _set(base, column, raw, _number if column in _INTEGER_COLUMNS else str)


def _object_list(fields: Pairs, name: str, base: list[Any]) -> list[dict[str, Any]]:
    out = []
    for _, row in _filled_rows(fields, name):
        origin = row["origin"]
        index = int(origin) if origin.isdigit() else -1
        item = copy.deepcopy(base[index]) if 0 <= index < len(base) else {}
        _merge_object(item, row, ROW_COLUMNS[name])
        out.append(item)
    return out


def _put_list(target: dict[str, Any], key: str, items: Any, had: bool) -> None:
    """A list or map the form shows replaces the base's; left empty, it is left out
    unless the base had one (then it is emptied)."""
    if items or had:
        target[key] = items
    else:
        target.pop(key, None)


def definition_from_form(fields: Pairs, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the form's fields applied; keys the form does not show are kept."""
    given = dict(fields)
    out = copy.deepcopy(base)
    for name in _TEXTS:
        _set(out, name, given.get(name, ""), str)
    for name in _INTEGERS + _FLOATS:
        _set(out, name, given.get(name, ""), _number)
    args = [line for line in given.get("args", "").splitlines() if line.strip()]
    _put_list(out, "args", args, "args" in base)

    upgrade = dict(out.get("upgradeStrategy") or {})
    for key in _UPGRADE:
        _set(upgrade, key, given.get(f"upgradeStrategy.{key}", ""), _number)
    if upgrade or "upgradeStrategy" in base:
        out["upgradeStrategy"] = upgrade

    kind = given.get("container.type", "").strip()
    base_container = base.get("container") or {}
    if kind:
        container = copy.deepcopy(base_container)
        container["type"] = kind
        docker = dict(container.get("docker") or {})
        _set(docker, "image", given.get("container.docker.image", ""), str)
        if docker or kind == "DOCKER":
            container["docker"] = docker
        else:
            container.pop("docker", None)
        mappings = _object_list(fields, "portMappings", base_container.get("portMappings") or [])
        _put_list(container, "portMappings", mappings, "portMappings" in base_container)
        out["container"] = container
    else:
        out.pop("container", None)

    mode = given.get("network", "").strip()
    if mode:
        networks = copy.deepcopy(base.get("networks") or [{}])
        networks[0]["mode"] = mode
        _set(networks[0], "name", given.get("network.name", ""), str)
        out["networks"] = networks
    else:
        out.pop("networks", None)

    env: dict[str, Any] = {r["key"]: r["value"] for _, r in _filled_rows(fields, "env")}
    for key, value in (base.get("env") or {}).items():
        if not isinstance(value, str):
            env.setdefault(key, value)  # secret references: not in the form, kept
    _put_list(out, "env", env, "env" in base)
    labels = {r["key"]: r["value"] for _, r in _filled_rows(fields, "labels")}
    _put_list(out, "labels", labels, "labels" in base)
    constraints = [
        [r["field"], r["operator"], *([r["value"]] if r["value"].strip() else [])]
        for _, r in _filled_rows(fields, "constraints")
    ]
    _put_list(out, "constraints", constraints, "constraints" in base)
    for name in ("portDefinitions", "healthChecks"):
        _put_list(out, name, _object_list(fields, name, base.get(name) or []), name in base)
    return out


_SEGMENT_RE = re.compile(r"^([^()]*)(?:\((\d+)\))?$")


def _segments(path: str) -> list[str | int]:
    """``/container/portMappings(1)/hostPort`` -> ``[container, portMappings, 1, hostPort]``."""
    out: list[str | int] = []
    for part in path.strip("/").split("/"):
        match = _SEGMENT_RE.match(part)
        if match is None:
            out.append(part)
            continue
        if match.group(1):
            out.append(match.group(1))
        if match.group(2) is not None:
            out.append(int(match.group(2)))
    return out


def _row_field(fields: Pairs, name: str, rest: list[str | int], default: str) -> Field | None:
    """The input of row ``rest[0]`` of list ``name`` (indexes count the definition's
    entries, which skip blank rows) and column ``rest[1]`` when the form has it."""
    if not rest or not isinstance(rest[0], int):
        return (f"{name}.{default}", 0) if _rows(fields, name) else None
    filled = _filled_rows(fields, name)
    if rest[0] >= len(filled):
        return None
    column = rest[1] if len(rest) > 1 and rest[1] in ROW_COLUMNS[name] else default
    return f"{name}.{column}", filled[rest[0]][0]


def _keyed_field(fields: Pairs, name: str, rest: list[str | int]) -> Field | None:
    """The value input of the row of map ``name`` whose key the path names."""
    if not rest:
        return None
    for position, row in enumerate(_rows(fields, name)):
        if row["key"] == str(rest[0]):
            return f"{name}.value", position
    return None


def field_of(path: str, fields: Pairs) -> Field | None:
    """The input a validation error at ``path`` (Marathon's ``details[].path``) belongs
    to, given the form's fields; None for what the form does not show."""
    segments = _segments(path)
    if not segments:
        return None
    head, rest = segments[0], segments[1:]
    if head in _TEXTS + _INTEGERS + _FLOATS + ("args",):
        return str(head), 0
    if head == "upgradeStrategy":
        key = rest[0] if rest and rest[0] in _UPGRADE else _UPGRADE[0]
        return f"upgradeStrategy.{key}", 0
    if head == "networks":
        return ("network.name" if rest[-1:] == ["name"] else "network"), 0
    if head in ("env", "labels"):
        return _keyed_field(fields, str(head), rest)
    if head == "constraints":
        return _row_field(fields, "constraints", rest, "field")
    if head in ("portDefinitions", "healthChecks"):
        return _row_field(fields, str(head), rest, ROW_COLUMNS[str(head)][0])
    if head == "container":
        return _container_field(fields, rest)
    return None


def _container_field(fields: Pairs, rest: list[str | int]) -> Field | None:
    if not rest or rest == ["type"]:
        return "container.type", 0
    if rest[0] == "docker":
        if rest[1:2] == ["network"]:
            return "network", 0
        if rest[1:2] == ["portMappings"]:
            return _row_field(fields, "portMappings", rest[2:], "containerPort")
        return "container.docker.image", 0
    if rest[0] == "portMappings":
        return _row_field(fields, "portMappings", rest[1:], "containerPort")
    return None
