"""The scheduler endpoint, ``POST /api/v1/scheduler``: the request and call checks of
Mesos 1.x in their order, then one handler per call type.

Handlers belong to the part of the master that owns what the call changes; a call
type without one (inverse offers, operations, REQUEST) is accepted and ignored.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from marathon_mesos_local.http import JSON, PROTOBUF, Request, Response, accepts, check_post
from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.credentials import FrameworkAuthenticator
from marathon_mesos_local.master.frameworks import Subscriptions
from marathon_mesos_local.master.launch import Launcher
from marathon_mesos_local.master.model import Framework
from marathon_mesos_local.master.offers import Allocator
from marathon_mesos_local.master.tasks import Tasks
from marathon_mesos_local.messages import id_value
from marathon_mesos_local.schema import SchemaError, check_call

__all__ = ["SchedulerApi"]

log = logging.getLogger(__name__)

#: Calls that need their sub-message (``validation.cpp``); others may omit it.
_NEEDS_BODY = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
}

#: Handles one call of a subscribed framework; None means ``202 Accepted``.
CallHandler = Callable[[Framework, Mapping[str, Any]], Response | None]


class SchedulerApi:
    """Checks scheduler calls and hands each to its handler."""

    def __init__(
        self,
        books: Books,
        subscriptions: Subscriptions,
        allocator: Allocator,
        launcher: Launcher,
        tasks: Tasks,
        authenticator: FrameworkAuthenticator | None = None,
    ) -> None:
        self.books = books
        self.subscriptions = subscriptions
        self.authenticator = authenticator
        self._handlers: dict[str, CallHandler] = {
            "TEARDOWN": subscriptions.teardown,
            "UPDATE_FRAMEWORK": subscriptions.update,
            "REVIVE": allocator.revive,
            "SUPPRESS": allocator.suppress,
            "DECLINE": allocator.decline,
            "ACCEPT": launcher.accept,
            "KILL": tasks.kill,
            "ACKNOWLEDGE": tasks.acknowledge,
            "RECONCILE": tasks.reconcile,
            "SHUTDOWN": tasks.shutdown,
            "MESSAGE": tasks.message,
        }

    def handle(self, request: Request) -> Response:
        principal = None
        if self.authenticator is not None:  # libprocess authenticates before the handler
            principal = self.authenticator.principal(request.headers.get("authorization"))
            if principal is None:
                return Response(401, headers=[("WWW-Authenticate", self.authenticator.challenge)])
        if (refused := check_post(request)) is not None:
            return refused
        content_type = request.headers["content-type"]
        if content_type == PROTOBUF:
            # Real Mesos takes binary Calls too; this master speaks JSON only.
            return Response.text(
                415, f"Expecting 'Content-Type' of {JSON} ({PROTOBUF} is not supported here)"
            )
        if content_type != JSON:
            return Response.text(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            return Response.text(400, f"Failed to parse body into JSON: {exc}")
        try:
            call = check_call(body)
        except SchemaError as exc:
            return Response.text(400, f"Failed to convert JSON into Call protobuf: {exc}")
        error = validate_call(call, principal)
        if error:
            return Response.text(400, f"Failed to validate scheduler::Call: {error}")
        kind = call["type"]
        stream_id = request.headers.get("mesos-stream-id")
        if kind == "SUBSCRIBE":
            if not accepts(request.headers.get("accept"), JSON):
                return Response.text(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
            if stream_id is not None:
                return Response.text(
                    400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"
                )
            return self.subscriptions.subscribe(call)
        framework_id = call["framework_id"]["value"]
        framework = self.books.frameworks.get(framework_id)
        if framework is None:
            return Response.text(400, "Framework cannot be found")
        if framework.stream is None:
            return Response.text(403, "Framework is not subscribed")
        if stream_id is None:
            return Response.text(
                400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        if stream_id != framework.stream.stream_id:
            return Response.text(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the "
                f"stream ID currently associated with framework ID {framework_id}",
            )
        handler = self._handlers.get(kind)
        if kind == "UNKNOWN":
            return Response(501)
        if handler is None:
            log.info("ignoring %s call of framework %s", kind, framework_id)
            return Response(202)
        result: Response | None = handler(framework, call)
        return result or Response(202)


def validate_call(call: Mapping[str, Any], principal: str | None = None) -> str | None:
    """What Mesos's ``validation::scheduler::call::validate`` finds wrong with a call
    made by the authenticated ``principal`` (None: not authenticated)."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE":
        if "subscribe" not in call:
            return "Expecting 'subscribe' to be present"
        info_id = id_value(call["subscribe"]["framework_info"].get("id"))
        if info_id != id_value(call.get("framework_id")):
            return "'framework_id' differs from 'subscribe.framework_info.id'"
        claimed = call["subscribe"]["framework_info"].get("principal")
        if principal is not None and claimed is not None and claimed != principal:
            return (
                f"Authenticated principal '{principal}' does not match principal "
                f"'{claimed}' set in `FrameworkInfo`"
            )
        return None
    if "framework_id" not in call:
        return "Expecting 'framework_id' to be present"
    field = _NEEDS_BODY.get(kind)
    if field is not None and field not in call:
        return f"Expecting '{field}' to be present"
    if kind in ("ACKNOWLEDGE", "ACKNOWLEDGE_OPERATION_STATUS"):
        raw = base64.b64decode(call[field or ""]["uuid"])
        if len(raw) != 16:
            return f"Invalid UUID: expected 16 bytes, got {len(raw)}"
    if kind == "ACKNOWLEDGE_OPERATION_STATUS" and "agent_id" not in call[field or ""]:
        return "Expecting 'agent_id' to be present"
    if kind == "UPDATE_FRAMEWORK":
        info_id = id_value(call["update_framework"]["framework_info"].get("id"))
        if info_id != id_value(call["framework_id"]):
            return "'framework_id' differs from 'update_framework.framework_info.id'"
    return None
