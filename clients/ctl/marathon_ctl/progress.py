"""What a deployment has done so far, from Marathon's events: no I/O here.

:class:`DeploymentProgress` is fed the events of ``/v2/events`` (and a snapshot of
each affected app's tasks at the start) and keeps per app how many instances of the
new version run and are healthy, how many old ones are left, and which step runs.
Each event it understands comes back as a :class:`Fact`, the line a user reads.
Without an event stream, snapshots of the deployment and its apps polled from the API
are fed instead, and what changed between two of them comes back as facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: Events the watch subscribes to (the first tells the stream is open).
WATCHED_EVENTS = (
    "event_stream_attached",
    "deployment_info",
    "deployment_step_success",
    "deployment_step_failure",
    "deployment_success",
    "deployment_failed",
    "status_update_event",
    "instance_changed_event",
    "health_status_changed_event",
)

#: Conditions of an instance that is gone for good.
TERMINAL = frozenset(
    {"Finished", "Failed", "Killed", "Error", "Dropped", "Gone", "UnreachableInactive", "Unknown"}
)

_APP_TASK = re.compile(r"^(.+\.(?:instance|marathon)-[^.]+)\._app\.\d+$")


@dataclass
class Instance:
    condition: str
    version: str | None
    host: str | None = None
    healthy: bool | None = None


@dataclass
class AppProgress:
    """One app of the deployment: its target and its instances as events report them."""

    app_id: str
    target: int
    #: Instances whose version is at least this are "new" (the app's last config change).
    new_since: str
    instances: dict[str, Instance] = field(default_factory=dict)
    removed: bool = False

    def is_new(self, instance: Instance) -> bool:
        return instance.version is not None and instance.version >= self.new_since

    @property
    def new_running(self) -> int:
        return sum(
            1 for i in self.instances.values() if self.is_new(i) and i.condition == "Running"
        )

    @property
    def new_healthy(self) -> int:
        return sum(1 for i in self.instances.values() if self.is_new(i) and i.healthy)

    @property
    def old_left(self) -> int:
        return sum(1 for i in self.instances.values() if not self.is_new(i))

    @property
    def has_health(self) -> bool:
        return any(i.healthy is not None for i in self.instances.values())


@dataclass
class Fact:
    """One thing that happened, as a line and as data (``--json``)."""

    time: str
    text: str
    event: dict[str, Any]


@dataclass
class DeploymentProgress:
    deployment_id: str
    #: The version the deployment brings each affected app to.
    version: str
    apps: dict[str, AppProgress] = field(default_factory=dict)
    current_step: int = 0
    total_steps: int = 0
    step_actions: list[str] = field(default_factory=list)
    #: Apps the deployment's plan names (from its events), tracked or not yet.
    plan_apps: set[str] = field(default_factory=set)
    #: "succeeded", "failed" or "rolled back" once over.
    outcome: str | None = None
    reason: str = ""

    def add_app(self, app: dict[str, Any]) -> AppProgress:
        """Start tracking ``app`` (``GET /v2/apps/{id}`` with its tasks)."""
        app_id = str(app["id"])
        info = app.get("versionInfo") or {}
        since = str(info.get("lastConfigChangeAt") or app.get("version") or "")
        progress = AppProgress(app_id, int(app.get("instances", 0)), since)
        for task in app.get("tasks") or []:
            progress.instances[_instance_key(task)] = Instance(
                condition=_condition(task.get("state", "")),
                version=task.get("version"),
                host=task.get("host"),
                healthy=_healthy(task),
            )
        self.apps[app_id] = progress
        return progress

    def handle(self, event_type: str, payload: dict[str, Any]) -> Fact | None:
        """Apply ``payload`` (of ``event_type``); the fact to show, None if not ours."""
        time = _clock(payload.get("timestamp"))
        if event_type.startswith("deployment_"):
            plan = payload.get("plan") or {}
            if payload.get("id", plan.get("id")) != self.deployment_id:
                return None
            return self._deployment(event_type, payload, plan, time)
        app_id = payload.get("appId") or payload.get("runSpecId")
        app = self.apps.get(str(app_id))
        if app is None:
            return None
        if event_type == "instance_changed_event":
            return self._instance_changed(app, payload, time)
        if event_type == "health_status_changed_event":
            key = str(payload.get("instanceId"))
            instance = app.instances.get(key)
            if instance is not None:
                instance.healthy = bool(payload.get("alive"))
            state = "healthy" if payload.get("alive") else "unhealthy"
            return Fact(time, f"{_short(key)} {state}", payload)
        if event_type == "status_update_event":
            message = payload.get("message") or ""
            status = str(payload.get("taskStatus", ""))
            if status in ("TASK_FAILED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED") and message:
                return Fact(
                    time, f"{_short(str(payload.get('taskId')))} {status}: {message}", payload
                )
        return None

    def _deployment(
        self, event_type: str, payload: dict[str, Any], plan: dict[str, Any], time: str
    ) -> Fact:
        steps = plan.get("steps") or []
        self.total_steps = len(steps) or self.total_steps
        for planned in steps:
            for action in planned.get("actions", []):
                self.plan_apps.add(str(action.get("app")))
                if action.get("action") == "StopApplication" and action.get("app") in self.apps:
                    self.apps[str(action["app"])].removed = True
        step = payload.get("currentStep") or {}
        actions = [f"{a.get('action')} {a.get('app')}" for a in step.get("actions", [])]
        number = _step_number(steps, step) if step else self.current_step
        if event_type == "deployment_info":
            self.current_step, self.step_actions = number, actions
            text = f"step {number}/{self.total_steps} {', '.join(actions)}"
        elif event_type == "deployment_step_success":
            text = f"step {number}/{self.total_steps} done"
        elif event_type == "deployment_success":
            self.outcome = "succeeded"
            text = f"deployment {self.deployment_id} succeeded"
        else:
            self.outcome = "failed"
            self.reason = str(payload.get("reason") or "")
            text = f"deployment {self.deployment_id} failed: {self.reason}".rstrip(": ")
        return Fact(time, text, payload)

    def _instance_changed(self, app: AppProgress, payload: dict[str, Any], time: str) -> Fact:
        key = str(payload.get("instanceId"))
        condition = str(payload.get("condition"))
        previous = app.instances.get(key)
        if condition in TERMINAL:
            app.instances.pop(key, None)
        elif previous is None:
            app.instances[key] = Instance(
                condition, payload.get("runSpecVersion"), payload.get("host")
            )
        else:
            previous.condition = condition
            previous.host = payload.get("host") or previous.host
        where = f" on {payload['host']}" if payload.get("host") else ""
        old = "" if app.is_new(Instance(condition, payload.get("runSpecVersion"))) else "old "
        return Fact(time, f"{old}{_short(key)} {condition}{where}", payload)

    def observe_deployment(self, deployment: dict[str, Any], time: str) -> Fact | None:
        """Without an event stream: the deployment as ``/v2/deployments`` lists it; the
        step as a fact when it moved."""
        actions = deployment.get("currentActions") or []
        for action in actions:
            self.plan_apps.add(str(action.get("app")))
            if action.get("action") == "StopApplication" and action.get("app") in self.apps:
                self.apps[str(action["app"])].removed = True
        step = int(deployment.get("currentStep") or 0)
        self.total_steps = int(deployment.get("totalSteps") or self.total_steps)
        texts = [f"{a.get('action')} {a.get('app')}" for a in actions]
        if (step, texts) == (self.current_step, self.step_actions):
            return None
        self.current_step, self.step_actions = step, texts
        text = f"step {step}/{self.total_steps} {', '.join(texts)}".rstrip()
        return Fact(time, text, {"eventType": "ctl_step_polled", **deployment})

    def observe_app(self, app: dict[str, Any], time: str) -> list[Fact]:
        """Without an event stream: the app's tasks now (``GET /v2/apps/{id}``); each
        instance that came, changed or went since the last look is a fact."""
        app_id = str(app["id"])
        tracked = self.apps.get(app_id)
        if tracked is None:
            self.add_app(app)
            return []
        now = {
            _instance_key(task): Instance(
                _condition(task.get("state", "")),
                task.get("version"),
                task.get("host"),
                _healthy(task),
            )
            for task in app.get("tasks") or []
        }
        facts = []
        for key, instance in now.items():
            before = tracked.instances.get(key)
            if before is None or before.condition != instance.condition:
                facts.append(_polled(tracked, key, instance, instance.condition, time))
        for key, instance in tracked.instances.items():
            if key not in now:
                facts.append(_polled(tracked, key, instance, "Gone", time))
        tracked.instances = now
        return facts

    def settle(self, apps: dict[str, dict[str, Any] | None]) -> None:
        """The deployment is gone without an event we saw: it succeeded if every app is
        at the version deployed (or gone, where the plan stopped it), else it was rolled
        back."""
        for app_id, app in apps.items():
            expected_gone = self.apps[app_id].removed if app_id in self.apps else True
            if app is None:
                if not expected_gone:
                    self.outcome, self.reason = "rolled back", f"{app_id} is gone"
                    return
            elif str(app.get("version")) != self.version:
                self.outcome = "rolled back"
                self.reason = f"{app_id} is at version {app.get('version')}, not {self.version}"
                return
        self.outcome = "succeeded"


def _polled(app: AppProgress, key: str, instance: Instance, condition: str, time: str) -> Fact:
    where = f" on {instance.host}" if instance.host else ""
    old = "" if app.is_new(instance) else "old "
    event = {
        "eventType": "ctl_instance_polled",
        "runSpecId": app.app_id,
        "instanceId": key,
        "condition": condition,
        "host": instance.host,
        "runSpecVersion": instance.version,
    }
    return Fact(time, f"{old}{_short(key)} {condition}{where}", event)


def _step_number(steps: list[Any], step: dict[str, Any]) -> int:
    for number, candidate in enumerate(steps, 1):
        if candidate == step:
            return number
    return 0


def _instance_key(task: dict[str, Any]) -> str:
    """The instance id of a task: ``<app>.instance-<uuid>._app.<n>`` (Marathon 1.5+)
    belongs to ``<app>.instance-<uuid>``; an older ``<app>.marathon-<uuid>`` is its own."""
    task_id = str(task.get("id"))
    match = _APP_TASK.match(task_id)
    return match.group(1) if match else task_id


def _condition(state: str) -> str:
    """``TASK_RUNNING`` -> ``Running``."""
    return state.removeprefix("TASK_").capitalize() if state.startswith("TASK_") else state


def _healthy(task: dict[str, Any]) -> bool | None:
    results = task.get("healthCheckResults")
    if not results:
        return None
    return all(r.get("alive") for r in results)


def _short(instance_id: str) -> str:
    """``web.marathon-1f3a...`` -> ``web.1f3a5c``: enough to tell instances apart."""
    name, _, rest = _APP_TASK.sub(r"\1", instance_id).rpartition(".")
    if not name:
        return instance_id
    uuid = rest.removeprefix("instance-").removeprefix("marathon-")
    return f"/{name.replace('_', '/')}.{uuid[:8]}"


def _clock(timestamp: Any) -> str:
    """``2026-12-03T12:00:09.123Z`` -> ``12:00:09``."""
    text = str(timestamp or "")
    return text[11:19] if len(text) >= 19 else text
