"""Following a deployment to its end from the event stream, and saying why it waits.

The stream is opened before the change is sent, so no event is missed. Between
events only ``/v2/deployments`` is read (a deployment cancelled by a rollback ends
without an event of its own); once nothing moved for a while, the deployment's
status (this server's ``GET /v2/deployments/{id}``), else the launch queue and the
apps' last failures, say why. A server without an event stream (``/v2/events``
answers 404 or 503) is polled instead: the deployments and the apps, once a second.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from marathon_ctl.client import Marathon
from marathon_ctl.errors import DEPLOYMENT_FAILED, INTERRUPTED, OK, TIMED_OUT, ApiError, CtlError
from marathon_ctl.progress import WATCHED_EVENTS, DeploymentProgress, Fact
from marathon_ctl.why import (
    deployment_status,
    failure_line,
    placement_lines,
    queue_entries,
    reason_lines,
)

#: How often the running deployments are read between events.
POLL_SECONDS = 2.0
#: Without progress for this long, say why (and refresh the reasons as often).
STALL_SECONDS = 3.0
#: Without an event stream, how often the deployments and the apps are read.
FALLBACK_POLL_SECONDS = 1.0


class Renderer(Protocol):
    def fact(self, fact: Fact, progress: DeploymentProgress) -> None: ...
    def waiting(self, reasons: list[str], progress: DeploymentProgress) -> None: ...
    def refresh(self, progress: DeploymentProgress) -> None: ...
    def finish(self, progress: DeploymentProgress, exit_code: int, note: str) -> None: ...
    def stop(self) -> None: ...


class EventFeed:
    """``/v2/events`` read by a thread of its own into a queue the watch loop polls."""

    def __init__(self, client: Marathon) -> None:
        self.items: queue.Queue[tuple[str, dict[str, Any]] | BaseException] = queue.Queue()
        self.attached = threading.Event()
        self._client = client
        self._thread = threading.Thread(target=self._read, daemon=True, name="events")

    def start(self, *, wait: float = 5.0) -> EventFeed:
        """Open the stream; returns once it is attached (or ``wait`` passed)."""
        self._thread.start()
        self.attached.wait(wait)
        return self

    def _read(self) -> None:
        try:
            for event_type, payload in self._client.events(WATCHED_EVENTS):
                if event_type == "event_stream_attached":
                    self.attached.set()
                    continue
                self.items.put((event_type, payload))
        except BaseException as exc:  # handed to the main thread, which reports it
            self.items.put(exc)
            self.attached.set()

    def close(self) -> None:
        """Stop reading: the stream's connection is closed under the reading thread."""
        self._client.close()

    def get(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        try:
            item = self.items.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item


def start_progress(
    client: Marathon, deployment_id: str, version: str, app_ids: Iterable[str]
) -> DeploymentProgress:
    """The progress of a deployment, with each affected app's tasks as they are now."""
    progress = DeploymentProgress(deployment_id, version)
    for app in _apps_now(client, app_ids).values():
        if app is not None:
            progress.add_app(app)
    return progress


def _apps_now(client: Marathon, app_ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Each app with its tasks, None for one that is gone."""
    return {app_id: client.app(app_id) for app_id in app_ids}


def waiting_reasons(client: Marathon, progress: DeploymentProgress) -> list[str]:
    """Why the deployment's apps wait: the leader's reason per app from the deployment's
    status where the server has it, else placement from the queue, backoff, last failures."""
    found = deployment_status(client, progress.deployment_id)
    if found is not None:
        reasons = [
            f"{app_id}: {line}"
            for app_id, entry in found["status"].items()
            if entry.get("state") == "waiting"
            for line in reason_lines(entry)
        ]
        if reasons:
            return reasons
    reasons = []
    entries = queue_entries(client, progress.apps)
    for app_id, entry in entries.items():
        reasons.extend(f"{app_id}: {line}" for line in placement_lines(entry))
    for app_id, app in _apps_now(client, progress.apps).items():
        line = failure_line(app) if app is not None else None
        if line:
            reasons.append(f"{app_id}: {line}")
    return reasons


def follow(
    client: Marathon,
    feed: EventFeed,
    progress: DeploymentProgress,
    renderer: Renderer,
    *,
    timeout: float | None,
    expected_apps: Iterable[str] = (),
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Render ``progress`` until the deployment ends; the exit code."""
    started = clock()
    last_change = last_poll = last_why = started
    reasons: list[str] = []
    app_ids = set(progress.apps) | set(expected_apps)
    polling = False
    try:
        while progress.outcome is None:
            now = clock()
            if timeout is not None and now - started >= timeout:
                note = (
                    f"timed out after {timeout:g}s: deployment {progress.deployment_id} keeps"
                    f" running (marathon-ctl deployment watch {progress.deployment_id})"
                )
                renderer.finish(progress, TIMED_OUT, note)
                return TIMED_OUT
            try:
                item = feed.get(timeout=0.25)
            except ApiError as exc:  # the server has no event stream
                polling, item = True, None
                text = (
                    f"no event stream (GET /v2/events: {exc.status}):"
                    f" polling every {FALLBACK_POLL_SECONDS:g}s"
                )
                polling_event = {"eventType": "ctl_polling", "message": text}
                renderer.fact(Fact(_utc_clock(), text, polling_event), progress)
            if item is not None:
                fact = progress.handle(*item)
                if progress.plan_apps - app_ids:
                    _track(client, progress, progress.plan_apps - app_ids)
                    app_ids |= progress.plan_apps
                if fact is not None:
                    last_change = clock()
                    renderer.fact(fact, progress)
                    if progress.outcome is not None:
                        break
            now = clock()
            if now - last_poll >= (FALLBACK_POLL_SECONDS if polling else POLL_SECONDS):
                last_poll = now
                running = client.get("/v2/deployments")
                mine = next((d for d in running if d.get("id") == progress.deployment_id), None)
                apps = None
                if polling:
                    apps = _apps_now(client, sorted(app_ids | progress.plan_apps))
                    app_ids |= set(apps)
                    if _observe(progress, renderer, mine, apps):
                        last_change = clock()
                if mine is None and progress.outcome is None:
                    _drain(feed, progress, renderer)
                    if progress.outcome is None:
                        progress.settle(apps if apps is not None else _apps_now(client, app_ids))
            if (
                progress.outcome is None
                and now - last_change >= STALL_SECONDS
                and now - last_why >= STALL_SECONDS
            ):
                last_why = now
                fresh = waiting_reasons(client, progress)
                if fresh != reasons:
                    reasons = fresh
                    renderer.waiting(reasons, progress)
            renderer.refresh(progress)
    except KeyboardInterrupt:
        raise Interrupted(progress.deployment_id) from None
    code = OK if progress.outcome == "succeeded" else DEPLOYMENT_FAILED
    renderer.finish(progress, code, _outcome_note(progress, clock() - started))
    return code


def _observe(
    progress: DeploymentProgress,
    renderer: Renderer,
    deployment: dict[str, Any] | None,
    apps: dict[str, dict[str, Any] | None],
) -> bool:
    """Apply one poll (no event stream): the deployment's step and the apps' tasks;
    whether anything moved."""
    when = _utc_clock()
    facts = [progress.observe_deployment(deployment, when)] if deployment is not None else []
    for app in apps.values():
        if app is not None:
            facts.extend(progress.observe_app(app, when))
    for fact in facts:
        if fact is not None:
            renderer.fact(fact, progress)
    return any(facts)


def _utc_clock() -> str:
    """Now as the events' timestamps show it (``12:00:09``, UTC)."""
    return datetime.now(UTC).strftime("%H:%M:%S")


def _track(client: Marathon, progress: DeploymentProgress, app_ids: set[str]) -> None:
    """Follow apps the plan names that the watch did not know of (a group's scale)."""
    for app_id, app in _apps_now(client, sorted(app_ids)).items():
        if app is not None and app_id not in progress.apps:
            progress.add_app(app)


def _drain(feed: EventFeed, progress: DeploymentProgress, renderer: Renderer) -> None:
    """Apply events already received: the deployment's own end may be among them."""
    while (item := feed.get(timeout=0.05)) is not None:
        fact = progress.handle(*item)
        if fact is not None:
            renderer.fact(fact, progress)


def _outcome_note(progress: DeploymentProgress, elapsed: float) -> str:
    text = f"deployment {progress.deployment_id} {progress.outcome} after {elapsed:.0f}s"
    return f"{text}: {progress.reason}" if progress.reason else text


class Interrupted(CtlError):
    """Ctrl-C while watching: the deployment keeps running."""

    exit_code = INTERRUPTED

    def __init__(self, deployment_id: str) -> None:
        super().__init__(
            f"interrupted: deployment {deployment_id} keeps running"
            f" (marathon-ctl deployment watch {deployment_id})"
        )
