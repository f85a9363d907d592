"""Readiness checks: the leader asks new instances of a deploying app whether they are ready.

Marathon runs an app's ``readinessChecks`` only while a deployment starts or replaces
its instances: each Running task of the new version is polled every
``intervalSeconds`` (``GET http(s)://host:port<path>``, port named by ``portName``,
under ``timeoutSeconds``) until a status in ``httpStatusCodesForReady`` comes back;
then it is ready and its polling stops. The deployment executor asks
:meth:`ReadinessMonitor.is_ready` for the instances it waits on, which starts
polling the ones not known yet, and calls :meth:`ReadinessMonitor.release` when the
deployment ends, which stops all polling of the app and forgets its results.

Like health, readiness is kept in memory and is leader-scoped (started by
:func:`marathon_core.leader.term.lead`): after a failover the new leader checks the
new instances again, which answer at once when they are ready.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs
import httpx
import trio

from marathon_core.model.app import AppDefinition, ReadinessCheck
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Condition, Instance, InstanceId, TaskId

__all__ = ["HttpResponse", "Instances", "ReadinessMonitor", "ReadinessResult", "readiness_target"]

log = logging.getLogger(__name__)

#: Bytes of a response body kept for ``lastResponse`` (``preserveLastResponse``).
MAX_BODY = 4096


@attrs.frozen
class HttpResponse:
    """Marathon's ``lastResponse``: what the last check got back."""

    status: int
    content_type: str
    body: str

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "contentType": self.content_type, "body": self.body}


@attrs.frozen
class ReadinessResult:
    """One task's readiness under one check (Marathon's ``ReadinessCheckResult``)."""

    name: str
    task_id: TaskId
    ready: bool
    #: Kept only with ``preserveLastResponse`` (else None, as Marathon shows it).
    last_response: HttpResponse | None = None
    #: Why the last check did not pass (a connection error, a timeout, a status), for
    #: the deployment status; not part of Marathon's JSON.
    last_failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "taskId": str(self.task_id), "ready": self.ready}
        if self.last_response is not None:
            out["lastResponse"] = self.last_response.to_json()
        return out


def readiness_target(
    check: ReadinessCheck, app: AppDefinition, instance: Instance
) -> tuple[str, int] | None:
    """``host, port`` of ``instance``'s task for ``check``: the host port at the index of
    the port named ``portName`` (None: the task has no such port yet)."""
    task = instance.task
    if instance.agent is None or task is None:
        return None
    names = app.port_names
    if check.port_name not in names:
        return None
    index = names.index(check.port_name)
    if index >= len(task.host_ports):
        return None
    return instance.agent.host, task.host_ports[index]


#: GETs ``url`` within ``timeout`` seconds: the check's one HTTP request.
Fetch = Callable[[str, float], Awaitable[HttpResponse]]


class Instances(Protocol):
    """The instance tracker as readiness needs it: is a task still the one running?"""

    def get(self, instance_id: InstanceId) -> Instance | None: ...


class ReadinessMonitor:
    """Polls the tasks the deployment executor waits on; see the module docstring."""

    def __init__(self, tracker: Instances, *, fetch: Fetch | None = None) -> None:
        self.tracker = tracker
        self._fetch = fetch
        self._nursery: trio.Nursery | None = None
        #: Per app: task id -> one result per readiness check.
        self._results: dict[PathId, dict[TaskId, tuple[ReadinessResult, ...]]] = {}
        #: Per app: the scopes of its polling tasks (cancelled by :meth:`release`).
        self._scopes: dict[PathId, set[trio.CancelScope]] = {}

    # -- reading ------------------------------------------------------------------

    @staticmethod
    def has_checks(app: AppDefinition) -> bool:
        return bool(app.readiness_checks)

    def is_ready(self, app: AppDefinition, instance: Instance) -> bool:
        """Whether every readiness check of ``app`` passed on ``instance``'s current task.

        True for apps without readiness checks. For a Running task not polled yet,
        polling starts now; before :meth:`run` has started nothing is recorded, so the
        next call starts it.
        """
        if not app.readiness_checks:
            return True
        task = instance.task
        if task is None or instance.condition is not Condition.RUNNING or self._nursery is None:
            return False
        results = self._results.setdefault(app.id, {})
        known = results.get(task.task_id)
        if known is None:
            results[task.task_id] = tuple(
                ReadinessResult(rc.name, task.task_id, ready=False) for rc in app.readiness_checks
            )
            self._start(app, instance)
            return False
        return all(r.ready for r in known)

    def results(self, app_id: PathId) -> list[ReadinessResult]:
        """The app's current results, one per polled task and check."""
        return [r for per_task in self._results.get(app_id, {}).values() for r in per_task]

    def results_json(self, app_id: PathId) -> list[dict[str, Any]]:
        """``readinessCheckResults`` of an app's current action in ``/v2/deployments``."""
        return [r.to_json() for r in self.results(app_id)]

    # -- running ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Poll until cancelled (the end of the leadership term)."""
        async with httpx.AsyncClient(verify=False, follow_redirects=False) as client:
            if self._fetch is None:
                self._fetch = _http_fetch(client)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()

    def release(self, app_id: PathId) -> None:
        """Stop polling ``app_id`` and forget its results (its deployment ended)."""
        for scope in self._scopes.pop(app_id, ()):
            scope.cancel()
        self._results.pop(app_id, None)

    def _start(self, app: AppDefinition, instance: Instance) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._scopes.setdefault(app.id, set()).add(scope)
        self._nursery.start_soon(self._poll, scope, app, instance)

    async def _poll(self, scope: trio.CancelScope, app: AppDefinition, instance: Instance) -> None:
        task = instance.task
        assert task is not None
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    for index, check in enumerate(app.readiness_checks):
                        nursery.start_soon(
                            self._poll_check, app, instance, task.task_id, index, check
                        )
        finally:
            scopes = self._scopes.get(app.id)
            if scopes is not None:
                scopes.discard(scope)
                if not scopes:
                    del self._scopes[app.id]

    async def _poll_check(
        self,
        app: AppDefinition,
        instance: Instance,
        task_id: TaskId,
        index: int,
        check: ReadinessCheck,
    ) -> None:
        """Check every ``intervalSeconds`` until ready, or until the task stops running."""
        while self._still_running(instance, task_id):
            started = trio.current_time()
            result = await self._check(check, app, instance, task_id)
            per_task = self._results.get(app.id, {}).get(task_id)
            if per_task is None:
                return  # released, or the app's results were forgotten
            updated = list(per_task)
            updated[index] = result
            self._results[app.id][task_id] = tuple(updated)
            if result.ready:
                return
            await trio.sleep_until(started + check.interval_seconds)
        self._results.get(app.id, {}).pop(task_id, None)  # gone: its replacement is polled

    def _still_running(self, instance: Instance, task_id: TaskId) -> bool:
        current = self.tracker.get(instance.instance_id)
        return (
            current is not None
            and current.task is not None
            and current.task.task_id == task_id
            and current.condition is Condition.RUNNING
        )

    async def _check(
        self, check: ReadinessCheck, app: AppDefinition, instance: Instance, task_id: TaskId
    ) -> ReadinessResult:
        target = readiness_target(check, app, instance)
        if target is None:
            return ReadinessResult(
                check.name, task_id, False, last_failure=f"no port named {check.port_name}"
            )
        host, port = target
        url = f"{check.protocol.lower()}://{host}:{port}{check.path}"
        assert self._fetch is not None
        try:
            with trio.fail_after(check.timeout_seconds):
                response = await self._fetch(url, float(check.timeout_seconds))
        except trio.TooSlowError:
            return ReadinessResult(
                check.name,
                task_id,
                False,
                last_failure=f"GET {url}: no answer within {check.timeout_seconds} s",
            )
        except Exception as exc:  # any failure is a failed check, never the end of the term
            if not isinstance(exc, httpx.HTTPError | OSError):
                log.exception("readiness check %s of %s failed", check.name, app.id)
            return ReadinessResult(
                check.name,
                task_id,
                False,
                last_failure=f"GET {url}: {type(exc).__name__}: {exc}",
            )
        ready = response.status in check.http_status_codes_for_ready
        return ReadinessResult(
            check.name,
            task_id,
            ready,
            last_response=response if check.preserve_last_response else None,
            last_failure=None if ready else f"GET {url}: status {response.status}",
        )


def _http_fetch(client: httpx.AsyncClient) -> Fetch:
    async def fetch(url: str, timeout: float) -> HttpResponse:
        response = await client.get(url, timeout=timeout)
        body = response.content[:MAX_BODY].decode("utf-8", errors="replace")
        return HttpResponse(response.status_code, response.headers.get("content-type", ""), body)

    return fetch
