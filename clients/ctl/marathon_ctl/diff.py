"""What a deploy of a file would change, as plain JSON paths: no model, no server code.

``PUT /v2/apps/{id}`` keeps the fields a definition leaves out, so an app is compared
on the fields the file gives. ``PUT /v2/groups/{id}`` replaces a group's apps when the
file gives ``apps`` and its subgroups when it gives ``groups`` (a subgroup the file
names is updated by the same rule): what it leaves out is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from marathon_ctl.common import walk_groups

#: Fields Marathon adds to an app that a definition never carries.
STATUS_FIELDS = frozenset(
    {
        "version",
        "versionInfo",
        "tasks",
        "tasksRunning",
        "tasksStaged",
        "tasksHealthy",
        "tasksUnhealthy",
        "deployments",
        "lastTaskFailure",
        "readinessCheckResults",
        "taskStats",
        "counts",
    }
)


def absolute(app_id: str, parent: str) -> str:
    """``app_id`` resolved against the group ``parent`` (Marathon's relative ids)."""
    if app_id.startswith("/"):
        return app_id.rstrip("/")
    parts = [p for p in parent.split("/") if p]
    for part in app_id.split("/"):
        if part == "..":
            parts = parts[:-1]
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def group_apps(group: dict[str, Any], parent: str = "/") -> dict[str, dict[str, Any]]:
    """Every app of a group definition by absolute id, relative ids resolved."""
    group_id = absolute(str(group.get("id", "")), parent) if group.get("id") else parent
    apps = {}
    for app in group.get("apps") or []:
        apps[absolute(str(app["id"]), group_id)] = app
    for child in group.get("groups") or []:
        apps.update(group_apps(child, group_id))
    return apps


def removed_apps(update: dict[str, Any], running: dict[str, Any], parent: str = "/") -> list[str]:
    """The running apps that a group ``update`` would remove; ``running`` is the group as
    ``GET /v2/groups/{id}`` gives it with its apps and groups."""
    group_id = absolute(str(update["id"]), parent) if update.get("id") else parent
    removed = []
    if update.get("apps") is not None:
        named = {absolute(str(app["id"]), group_id) for app in update["apps"]}
        removed += [str(a["id"]) for a in running.get("apps") or [] if a["id"] not in named]
    if update.get("groups") is not None:
        named_groups = {absolute(str(g["id"]), group_id): g for g in update["groups"]}
        for child in running.get("groups") or []:
            if child["id"] in named_groups:
                removed += removed_apps(named_groups[child["id"]], child, group_id)
            else:
                removed += [str(a["id"]) for g in walk_groups(child) for a in g.get("apps") or []]
    return removed


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay whole."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def app_changes(local: dict[str, Any], running: dict[str, Any]) -> list[str]:
    """Lines ``~ path: old → new``, ``+ path: new`` and ``- path: old`` for the fields
    ``local`` gives (``id`` aside)."""
    lines = []
    for key in sorted(k for k in local if k != "id" and k not in STATUS_FIELDS):
        new, old = flatten(local[key], key), flatten(running.get(key), key)
        for path in sorted(set(new) | set(old)):
            if path in new and path in old:
                if new[path] != old[path]:
                    lines.append(f"~ {path}: {_show(old[path])} → {_show(new[path])}")
            elif path in new:
                if new[path] not in (None, [], {}):
                    lines.append(f"+ {path}: {_show(new[path])}")
            elif old[path] not in (None, [], {}):
                lines.append(f"- {path}: {_show(old[path])}")
    return lines


def plan(
    apps_in_file: dict[str, dict[str, Any]],
    running: dict[str, dict[str, Any] | None],
    removed: Iterable[str] = (),
) -> list[str]:
    """The whole diff: per app ``create``, ``update`` with its changes, or ``remove``."""
    lines = []
    for app_id in sorted(apps_in_file):
        current = running.get(app_id)
        if current is None:
            lines.append(f"create {app_id}")
            lines.extend(
                f"  + {k}: {_show(v)}" for k, v in sorted(apps_in_file[app_id].items()) if k != "id"
            )
            continue
        changes = app_changes(apps_in_file[app_id], current)
        lines.append(f"update {app_id}" if changes else f"unchanged {app_id}")
        lines.extend(f"  {line}" for line in changes)
    lines.extend(f"remove {app_id}" for app_id in sorted(removed))
    return lines


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
