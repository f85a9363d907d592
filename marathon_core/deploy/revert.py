"""Rolling a deployment back (``DELETE /v2/deployments/{id}`` without ``force``)."""

from __future__ import annotations

from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group

__all__ = ["revert"]


def revert(current: Group, original: Group, deployment: Deployment) -> Group:
    """Undo ``deployment`` on top of ``current``: its apps go back to how ``original``
    had them; apps it did not touch keep any later change."""
    reverted = current
    for app_id in deployment.affected_app_ids():
        before = original.find_app(app_id)
        reverted = reverted.remove_app(app_id) if before is None else reverted.update_app(before)
    return reverted
