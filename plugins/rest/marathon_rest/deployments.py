"""``/v2/deployments``: list running deployments, cancel or roll them back."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action
from marathon_core.errors import NotFoundError
from marathon_core.model.codec import deployment_to_json
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_rest.api import Api
from marathon_rest.auth import allowed, authorize
from marathon_rest.responses import deployment_result, json_response, query_flag


async def list_deployments(request: Request) -> Response:
    api = Api.of(request)
    visible = [
        d
        for d in api.ctx.deployments.all()
        if all(allowed(request, Action.VIEW_RUN_SPEC, str(a)) for a in d.affected_app_ids())
    ]
    return json_response([deployment_to_json(d) for d in visible])


def revert(current: Group, original: Group, deployment: Deployment) -> Group:
    """Undo ``deployment`` on top of ``current``: its apps go back to how ``original``
    had them; apps it did not touch keep any later change."""
    reverted = current
    for app_id in deployment.affected_app_ids():
        before = original.find_app(app_id)
        reverted = reverted.remove_app(app_id) if before is None else reverted.update_app(before)
    return reverted


async def delete_deployment(request: Request) -> Response:
    """Cancel; with ``force`` nothing else (202), else also deploy the reverse change."""
    api = Api.of(request)
    deployment_id = request.path_params["deployment_id"]
    deployment = api.ctx.deployments.get(deployment_id)
    if deployment is None:
        raise NotFoundError(f"DeploymentPlan {deployment_id} does not exist")
    for app_id in deployment.affected_app_ids():
        authorize(request, Action.UPDATE_RUN_SPEC, str(app_id))
    if query_flag(request, "force"):
        await api.ctx.state.complete_deployment(deployment_id)
        api.ctx.deployments.remove(deployment_id)
        return Response(status_code=202)
    original = Group.empty_root()
    if deployment.original_version is not None:
        stored = await api.ctx.state.root_group(deployment.original_version)
        original = stored if stored is not None else original
    change = await api.ctx.groups.update_root(
        lambda current: revert(current, original, deployment), force=True
    )
    return deployment_result(change)


ROUTES = [
    Route("/v2/deployments", list_deployments, methods=["GET"]),
    Route("/v2/deployments/{deployment_id}", delete_deployment, methods=["DELETE"]),
]
