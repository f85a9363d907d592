"""``/v2/deployments``: list running deployments, show why one waits, cancel or roll back.

``GET /v2/deployments`` answers exactly Marathon's shape (marathon-python parses it
into models that reject unknown keys); ``currentActions[].readinessCheckResults``
come from the leader's readiness checks. ``GET /v2/deployments/{id}`` is ours
(Marathon has no such route): the same deployment JSON plus ``status``, per app of
the plan its state, progress and, when it cannot advance, why (see
:mod:`marathon_core.deploy.status` and the REST README).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action
from marathon_core.contracts.services import LeaderView
from marathon_core.errors import NotFoundError, ServiceUnavailableError
from marathon_core.model.codec import deployment_to_json
from marathon_core.model.deployment import Deployment
from marathon_core.model.ids import PathId
from marathon_rest.api import Api
from marathon_rest.auth import allowed, authorize
from marathon_rest.responses import deployment_result, json_response, query_flag


def _deployment_json(deployment: Deployment, leader: LeaderView | None) -> dict[str, Any]:
    """Marathon's JSON, with the readiness results of the current actions' apps."""
    out = deployment_to_json(deployment)
    if leader is not None:
        for action in out["currentActions"]:
            action["readinessCheckResults"] = leader.readiness_results(PathId.parse(action["app"]))
    return out


def _find(api: Api, deployment_id: str) -> Deployment:
    deployment = api.ctx.deployment(deployment_id)
    if deployment is None:
        raise NotFoundError(f"DeploymentPlan {deployment_id} does not exist")
    return deployment


async def list_deployments(request: Request) -> Response:
    api = Api.of(request)
    visible = [
        d
        for d in api.ctx.deployments()
        if all(allowed(request, Action.VIEW_RUN_SPEC, str(a)) for a in d.affected_app_ids())
    ]
    return json_response([_deployment_json(d, api.ctx.leader) for d in visible])


async def get_deployment(request: Request) -> Response:
    """One deployment with ``status``: per app, where it stands and why it waits."""
    api = Api.of(request)
    deployment = _find(api, request.path_params["deployment_id"])
    for app_id in deployment.affected_app_ids():
        authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
    leader = api.ctx.leader
    if leader is None:
        raise ServiceUnavailableError("This instance is not the leader: no scheduler runs here")
    status = await leader.deployment_status(deployment.id)
    if status is None:  # finished meanwhile
        raise NotFoundError(f"DeploymentPlan {deployment.id} does not exist")
    return json_response({**_deployment_json(deployment, leader), "status": status})


async def delete_deployment(request: Request) -> Response:
    """Cancel; with ``force`` nothing else (202), else also deploy the reverse change."""
    api = Api.of(request)
    deployment = _find(api, request.path_params["deployment_id"])
    for app_id in deployment.affected_app_ids():
        authorize(request, Action.UPDATE_RUN_SPEC, str(app_id))
    change = await api.ctx.cancel_deployment(deployment.id, force=query_flag(request, "force"))
    return Response(status_code=202) if change is None else deployment_result(change)


ROUTES = [
    Route("/v2/deployments", list_deployments, methods=["GET"]),
    Route("/v2/deployments/{deployment_id}", get_deployment, methods=["GET"]),
    Route("/v2/deployments/{deployment_id}", delete_deployment, methods=["DELETE"]),
]
