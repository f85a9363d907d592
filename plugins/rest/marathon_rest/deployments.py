"""``/v2/deployments``: list running deployments, cancel or roll them back."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action
from marathon_core.errors import NotFoundError
from marathon_core.model.codec import deployment_to_json
from marathon_rest.api import Api
from marathon_rest.auth import allowed, authorize
from marathon_rest.responses import deployment_result, json_response, query_flag


async def list_deployments(request: Request) -> Response:
    api = Api.of(request)
    visible = [
        d
        for d in api.ctx.deployments()
        if all(allowed(request, Action.VIEW_RUN_SPEC, str(a)) for a in d.affected_app_ids())
    ]
    return json_response([deployment_to_json(d) for d in visible])


async def delete_deployment(request: Request) -> Response:
    """Cancel; with ``force`` nothing else (202), else also deploy the reverse change."""
    api = Api.of(request)
    deployment_id = request.path_params["deployment_id"]
    deployment = api.ctx.deployment(deployment_id)
    if deployment is None:
        raise NotFoundError(f"DeploymentPlan {deployment_id} does not exist")
    for app_id in deployment.affected_app_ids():
        authorize(request, Action.UPDATE_RUN_SPEC, str(app_id))
    change = await api.ctx.cancel_deployment(deployment_id, force=query_flag(request, "force"))
    return Response(status_code=202) if change is None else deployment_result(change)


ROUTES = [
    Route("/v2/deployments", list_deployments, methods=["GET"]),
    Route("/v2/deployments/{deployment_id}", delete_deployment, methods=["DELETE"]),
]
