"""Marathon's deployment plan between two root groups.

Steps, in order: stop every app that is only in the original; start (a marker) every
app only in the target; then one step per dependency depth over the apps that are
new, changed, or asked to restart, shallowest first, so an app scales up only after
everything it depends on. Empty steps are dropped; an empty plan is still a plan.
"""

from __future__ import annotations

from collections.abc import Collection

from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import ActionKind, Deployment, DeploymentAction, DeploymentStep
from marathon_core.model.group import AppChanges, Group, app_changes
from marathon_core.model.ids import PathId, Timestamp

__all__ = ["dependency_depths", "plan_deployment"]


def dependency_depths(root: Group, app_ids: Collection[PathId]) -> dict[PathId, int]:
    """The length of each app's longest dependency chain in ``root`` (no deps = 1).

    The graph is acyclic (validation rejects cycles before planning).
    """
    edges = root.dependency_edges()
    depth: dict[PathId, int] = {}

    def visit(app_id: PathId) -> int:
        # Iterative post-order walk: deep dependency chains must not hit recursion limits.
        stack = [app_id]
        while stack:
            node = stack[-1]
            pending = [d for d in edges.get(node, ()) if d not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[node] = 1 + max((depth[d] for d in edges.get(node, ())), default=0)
        return depth[app_id]

    return {app_id: visit(app_id) for app_id in app_ids}


def _action_for(
    original: AppDefinition | None, target: AppDefinition, restart: Collection[PathId]
) -> ActionKind | None:
    if original is None:
        return ActionKind.SCALE
    if original is target and target.id not in restart:
        return None
    if target.id in restart or original.is_upgrade(target):
        return ActionKind.RESTART
    if original.instances != target.instances:
        return ActionKind.SCALE
    return None


def plan_deployment(
    original: Group,
    target: Group,
    *,
    version: Timestamp,
    restart: Collection[PathId] = (),
    deployment_id: str | None = None,
    changes: AppChanges | None = None,
    has_dependencies: bool = True,
) -> Deployment:
    """The plan that takes ``original`` to ``target``.

    :param restart: apps to restart even without a config change (``/restart``).
    :param changes: ``app_changes(original, target)`` when the caller has it already.
    :param has_dependencies: False promises that no app or group of ``target``
        declares dependencies, so every changed app is at depth 1 without walking
        the dependency graph of all apps.
    """
    if changes is None:
        changes = app_changes(original, target)
    stopped = sorted(changes.removed)
    started = sorted(a for a in changes.changed if a not in changes.previous)
    kinds = {
        app_id: kind
        for app_id, app in changes.changed.items()
        if (kind := _action_for(changes.previous.get(app_id), app, restart)) is not None
    }
    for app_id in restart:
        if app_id not in changes.changed and (same := target.find_app(app_id)) is not None:
            kind = _action_for(same, same, restart)
            if kind is not None:
                kinds[app_id] = kind
    depths = dependency_depths(target, kinds) if has_dependencies else dict.fromkeys(kinds, 1)
    steps = [
        DeploymentStep(tuple(DeploymentAction(ActionKind.STOP, a) for a in stopped)),
        DeploymentStep(tuple(DeploymentAction(ActionKind.START, a) for a in started)),
    ]
    for level in sorted(set(depths.values())):
        ids = sorted(a for a, d in depths.items() if d == level)
        steps.append(DeploymentStep(tuple(DeploymentAction(kinds[a], a) for a in ids)))
    return Deployment(
        id=deployment_id or Deployment.new_id(),
        version=version,
        original_version=original.version,
        target_version=target.version,
        steps=tuple(s for s in steps if s.actions),
        affected_apps=tuple(sorted({*stopped, *started, *kinds})),
    )
