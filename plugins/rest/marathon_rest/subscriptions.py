"""``/v2/eventSubscriptions``: register and list HTTP callback URLs
(delivered by :class:`~marathon_rest.callbacks.CallbackDispatcher`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action, SystemResource
from marathon_core.errors import BadRequestError
from marathon_core.model.events import subscription_event
from marathon_rest.api import Api
from marathon_rest.auth import authorize
from marathon_rest.responses import json_response


def _callback_url(request: Request) -> str:
    url = request.query_params.get("callbackUrl", "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequestError(f"Invalid callbackUrl '{url}': an http(s) URL is required")
    return url


async def list_subscriptions(request: Request) -> Response:
    authorize(request, Action.VIEW_RESOURCE, SystemResource.EVENTS)
    return json_response({"callbackUrls": Api.of(request).callbacks.urls})


async def change_subscription(request: Request) -> Response:
    authorize(request, Action.UPDATE_RESOURCE, SystemResource.EVENTS)
    api = Api.of(request)
    url = _callback_url(request)
    subscribing = request.method == "POST"
    if subscribing:
        await api.callbacks.subscribe(url)
    else:
        api.callbacks.unsubscribe(url)
    client = request.client.host if request.client else None
    event = subscription_event(subscribed=subscribing, client_ip=client, callback_url=url)
    api.ctx.events.publish(event)
    return json_response({"callbackUrl": url, "clientIp": client, "eventType": event["eventType"]})


ROUTES = [
    Route("/v2/eventSubscriptions", list_subscriptions, methods=["GET"]),
    Route("/v2/eventSubscriptions", change_subscription, methods=["POST", "DELETE"]),
]
