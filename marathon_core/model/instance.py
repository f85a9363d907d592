"""Instances and their tasks: ids, conditions, goals.

An *instance* is one of the ``instances`` copies of an app; it keeps its id across
relaunches, and each launch is a new *task* (a new incarnation). Ids follow Marathon
1.5+ (``prod_web.instance-<uuid>._app.1``); the parse functions accept the pre-1.5
forms too, because kill endpoints and stored state may still carry them.
"""

from __future__ import annotations

import enum
import re
import uuid as _uuid
from collections.abc import Iterable, Mapping

import attrs

from marathon_core.model.app import KillSelection
from marathon_core.model.ids import PathId, Timestamp

__all__ = [
    "AgentInfo",
    "Condition",
    "Goal",
    "Instance",
    "InstanceCounts",
    "InstanceId",
    "Task",
    "TaskId",
    "kill_order",
    "parse_instance_id",
    "parse_task_id",
]

_INSTANCE_RE = re.compile(r"^(.+)\.(instance-|marathon-)([^.]+)$")
_APP_TASK_RE = re.compile(r"^(.+)\.(instance-|marathon-)([^.]+)\._app\.(\d+)$")
_POD_TASK_RE = re.compile(r"^(.+)\.(instance-|marathon-)([^.]+)\.([^.]+)$")
_LEGACY_RESIDENT_RE = re.compile(r"^(.+)\.([0-9a-fA-F]+(?:-[0-9a-fA-F]+)+)\.(\d+)$")
_LEGACY_RE = re.compile(r"^(.+)([._])([0-9a-fA-F]+(?:-[0-9a-fA-F]+)+)$")


@attrs.frozen(repr=False, cache_hash=True)
class InstanceId:
    """``<safeId>.instance-<uuid>``; ``marathon-`` marks instances converted from old tasks."""

    run_spec_id: PathId
    uuid: str
    prefix: str = "instance-"

    @classmethod
    def new(cls, run_spec_id: PathId) -> InstanceId:
        """A fresh id; time-based UUIDs (as Marathon) sort roughly by creation."""
        return cls(run_spec_id, str(_uuid.uuid1()))

    def __str__(self) -> str:
        return f"{self.run_spec_id.safe_id}.{self.prefix}{self.uuid}"

    def __repr__(self) -> str:
        return f"InstanceId({str(self)!r})"


def parse_instance_id(text: str) -> InstanceId:
    """Parse an instance id; raises ValueError for anything else."""
    m = _INSTANCE_RE.match(text)
    if m is None:
        raise ValueError(f"invalid instance id {text!r}")
    return InstanceId(PathId.from_safe_id(m.group(1)), m.group(3), m.group(2))


@attrs.frozen(repr=False)
class TaskId:
    """A task id in one of Marathon's forms; ``str()`` gives back the same form.

    * app task (1.5+): ``<instanceId>._app.<incarnation>``
    * pod task: ``<instanceId>.<containerName>``
    * legacy (<=1.4): ``<safeId>.<uuid>`` or ``<safeId>_<uuid>``; resident legacy adds
      ``.<attempt>``. Their instance id is ``<safeId>.marathon-<uuid>``.
    """

    instance_id: InstanceId
    incarnation: int | None = 1
    container_name: str | None = None
    legacy_separator: str | None = None
    attempt: int | None = None

    @classmethod
    def for_instance(cls, instance_id: InstanceId, incarnation: int = 1) -> TaskId:
        return cls(instance_id, incarnation)

    @property
    def run_spec_id(self) -> PathId:
        return self.instance_id.run_spec_id

    def next_incarnation(self) -> TaskId:
        """The id of the next launch of the same instance (always in 1.5+ form)."""
        if self.legacy_separator is not None:
            return TaskId(self.instance_id, 1)
        return TaskId(self.instance_id, (self.incarnation or 0) + 1, self.container_name)

    def __str__(self) -> str:
        iid = self.instance_id
        if self.legacy_separator is not None:
            base = f"{iid.run_spec_id.safe_id}{self.legacy_separator}{iid.uuid}"
            return base if self.attempt is None else f"{base}.{self.attempt}"
        if self.container_name is not None:
            return f"{iid}.{self.container_name}"
        return f"{iid}._app.{self.incarnation}"

    def __repr__(self) -> str:
        return f"TaskId({str(self)!r})"


def parse_task_id(text: str) -> TaskId:
    """Parse any task id form Marathon ever produced; raises ValueError otherwise."""
    m = _APP_TASK_RE.match(text)
    if m is not None:
        iid = InstanceId(PathId.from_safe_id(m.group(1)), m.group(3), m.group(2))
        return TaskId(iid, int(m.group(4)))
    m = _POD_TASK_RE.match(text)
    if m is not None:
        iid = InstanceId(PathId.from_safe_id(m.group(1)), m.group(3), m.group(2))
        return TaskId(iid, None, container_name=m.group(4))
    m = _LEGACY_RESIDENT_RE.match(text)
    if m is not None:
        iid = InstanceId(PathId.from_safe_id(m.group(1)), m.group(2), "marathon-")
        return TaskId(iid, None, legacy_separator=".", attempt=int(m.group(3)))
    m = _LEGACY_RE.match(text)
    if m is not None:
        iid = InstanceId(PathId.from_safe_id(m.group(1)), m.group(3), "marathon-")
        return TaskId(iid, None, legacy_separator=m.group(2))
    raise ValueError(f"invalid task id {text!r}")


class Condition(enum.Enum):
    """Marathon's view of a task/instance state (Mesos states plus its own)."""

    SCHEDULED = "Scheduled"
    PROVISIONED = "Provisioned"
    RESERVED = "Reserved"
    STAGING = "Staging"
    STARTING = "Starting"
    RUNNING = "Running"
    KILLING = "Killing"
    FINISHED = "Finished"
    FAILED = "Failed"
    KILLED = "Killed"
    ERROR = "Error"
    DROPPED = "Dropped"
    GONE = "Gone"
    UNREACHABLE = "Unreachable"
    UNREACHABLE_INACTIVE = "UnreachableInactive"
    UNKNOWN = "Unknown"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_active(self) -> bool:
        """Launched and not (yet) known to be gone."""
        return self in _ACTIVE

    @property
    def is_lost(self) -> bool:
        return self in _LOST

    @property
    def mesos_state(self) -> str:
        """The ``TASK_*`` name shown as a task's ``state`` in the API."""
        return _TO_MESOS[self]

    @classmethod
    def from_mesos(
        cls, state: str, *, reason: str | None = None, message: str | None = None
    ) -> Condition:
        """Map a Mesos task state (and, for TASK_LOST, its reason) to a condition.

        The one table of Mesos task states: whether a state is terminal or active is
        read from the condition it maps to, for our tasks and unknown ones alike.
        TASK_LOST is not terminal by itself (Mesos sends it in place of UNREACHABLE,
        DROPPED, GONE and UNKNOWN, and may follow it with TASK_RUNNING when a
        partitioned agent returns), so, as in Marathon, its reason decides: a task
        Mesos does not know is Unknown, agent disconnection, removal or a
        reconciliation answer make it Unreachable (it may come back), reasons after
        which it cannot come back make it Gone, anything else Dropped. TASK_UNKNOWN
        is terminal here although not to Mesos: Marathon gives such tasks up.
        """
        direct = _FROM_MESOS.get(state)
        if direct is not None:
            return direct
        if state == "TASK_LOST":
            if reason == "REASON_TASK_UNKNOWN" or (
                message is not None and message.startswith("Reconciliation: Task is unknown")
            ):
                return cls.UNKNOWN
            if reason in _UNREACHABLE_REASONS:
                return cls.UNREACHABLE
            if reason in _GONE_REASONS:
                return cls.GONE
            return cls.DROPPED
        return cls.UNKNOWN


_TERMINAL = frozenset(
    {
        Condition.FINISHED,
        Condition.FAILED,
        Condition.KILLED,
        Condition.ERROR,
        Condition.DROPPED,
        Condition.GONE,
        Condition.UNKNOWN,
    }
)
_ACTIVE = frozenset(
    {
        Condition.STAGING,
        Condition.STARTING,
        Condition.RUNNING,
        Condition.KILLING,
        Condition.UNREACHABLE,
    }
)
_LOST = frozenset(
    {
        Condition.GONE,
        Condition.UNREACHABLE,
        Condition.UNREACHABLE_INACTIVE,
        Condition.UNKNOWN,
        Condition.DROPPED,
    }
)
_FROM_MESOS = {
    "TASK_STAGING": Condition.STAGING,
    "TASK_STARTING": Condition.STARTING,
    "TASK_RUNNING": Condition.RUNNING,
    "TASK_KILLING": Condition.KILLING,
    "TASK_FINISHED": Condition.FINISHED,
    "TASK_FAILED": Condition.FAILED,
    "TASK_KILLED": Condition.KILLED,
    "TASK_ERROR": Condition.ERROR,
    "TASK_DROPPED": Condition.DROPPED,
    "TASK_GONE": Condition.GONE,
    "TASK_GONE_BY_OPERATOR": Condition.GONE,
    "TASK_UNREACHABLE": Condition.UNREACHABLE,
    "TASK_UNKNOWN": Condition.UNKNOWN,
}
_TO_MESOS = {
    Condition.SCHEDULED: "TASK_STAGING",
    Condition.PROVISIONED: "TASK_STAGING",
    Condition.RESERVED: "TASK_RESERVED",
    Condition.STAGING: "TASK_STAGING",
    Condition.STARTING: "TASK_STARTING",
    Condition.RUNNING: "TASK_RUNNING",
    Condition.KILLING: "TASK_KILLING",
    Condition.FINISHED: "TASK_FINISHED",
    Condition.FAILED: "TASK_FAILED",
    Condition.KILLED: "TASK_KILLED",
    Condition.ERROR: "TASK_ERROR",
    Condition.DROPPED: "TASK_DROPPED",
    Condition.GONE: "TASK_GONE",
    Condition.UNREACHABLE: "TASK_UNREACHABLE",
    Condition.UNREACHABLE_INACTIVE: "TASK_UNREACHABLE",
    Condition.UNKNOWN: "TASK_UNKNOWN",
}
# Both the v0 (SLAVE) and v1 (AGENT) spellings: either API may be on the other end.
_UNREACHABLE_REASONS = frozenset(
    {
        "REASON_RECONCILIATION",
        "REASON_SLAVE_DISCONNECTED",
        "REASON_SLAVE_REMOVED",
        "REASON_AGENT_DISCONNECTED",
        "REASON_AGENT_REMOVED",
    }
)
# Reasons after which the task cannot come back (approximation of Marathon's list).
_GONE_REASONS = frozenset(
    {
        "REASON_CONTAINER_LAUNCH_FAILED",
        "REASON_CONTAINER_LIMITATION",
        "REASON_CONTAINER_LIMITATION_DISK",
        "REASON_CONTAINER_LIMITATION_MEMORY",
        "REASON_CONTAINER_PREEMPTED",
        "REASON_CONTAINER_UPDATE_FAILED",
        "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
        "REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
        "REASON_EXECUTOR_TERMINATED",
        "REASON_EXECUTOR_UNREGISTERED",
        "REASON_FRAMEWORK_REMOVED",
        "REASON_GC_ERROR",
        "REASON_INVALID_FRAMEWORKID",
        "REASON_INVALID_OFFERS",
        "REASON_MASTER_DISCONNECTED",
        "REASON_RESOURCES_UNKNOWN",
        "REASON_SLAVE_RESTARTED",
        "REASON_AGENT_RESTARTED",
        "REASON_SLAVE_UNKNOWN",
        "REASON_AGENT_UNKNOWN",
        "REASON_AGENT_REMOVED_BY_OPERATOR",
    }
)


class Goal(enum.Enum):
    """What the scheduler wants for an instance."""

    RUNNING = "Running"
    #: Resident instances: stop the task but keep the reservation and volumes.
    STOPPED = "Stopped"
    #: Stop and forget the instance.
    DECOMMISSIONED = "Decommissioned"


@attrs.frozen
class AgentInfo:
    host: str
    agent_id: str | None = None
    region: str | None = None
    zone: str | None = None
    attributes: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class Task:
    """One launch of an instance, as last reported by Mesos."""

    task_id: TaskId
    condition: Condition = Condition.PROVISIONED
    staged_at: Timestamp | None = None
    started_at: Timestamp | None = None
    host_ports: tuple[int, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    run_spec_version: Timestamp | None = None
    #: Mesos' ``TaskStatus.healthy`` (None: no Mesos-level health information).
    healthy: bool | None = None
    mesos_state: str | None = None


@attrs.frozen
class Instance:
    """One copy of an app: where it runs, what the scheduler wants, its current task."""

    instance_id: InstanceId
    goal: Goal = Goal.RUNNING
    condition: Condition = Condition.SCHEDULED
    agent: AgentInfo | None = None
    tasks: tuple[Task, ...] = ()
    run_spec_version: Timestamp | None = None
    role: str = "*"
    #: When the condition last changed (for unreachable timers and kill ordering).
    since: Timestamp | None = None
    #: Reservation id of a resident instance.
    reservation_id: str | None = None

    @property
    def app_id(self) -> PathId:
        return self.instance_id.run_spec_id

    @property
    def task(self) -> Task | None:
        """The app task (apps have at most one current task)."""
        return self.tasks[-1] if self.tasks else None

    @property
    def is_active(self) -> bool:
        return self.condition.is_active


# Instances in these conditions go first when some must be killed (Marathon's order).
_KILL_FIRST = (
    Condition.UNREACHABLE,
    Condition.SCHEDULED,
    Condition.PROVISIONED,
    Condition.STAGING,
    Condition.STARTING,
)


@attrs.frozen
class InstanceCounts:
    """How many of an app's instances a deployment counts on (goal Running, not
    terminal: ``active``), still hold resources (not terminal: ``present``), and are
    active and Running (``active_running``)."""

    active: int = 0
    present: int = 0
    active_running: int = 0

    @classmethod
    def of(cls, instances: Iterable[Instance]) -> InstanceCounts:
        active = present = active_running = 0
        for instance in instances:
            if instance.condition.is_terminal:
                continue
            present += 1
            if instance.goal is Goal.RUNNING:
                active += 1
                active_running += instance.condition is Condition.RUNNING
        return cls(active, present, active_running)


def kill_order(instances: Iterable[Instance], selection: KillSelection) -> list[Instance]:
    """Which instances to kill first (deployments and the scheduler's scale check alike):
    unreachable and not yet running before running, then by ``since`` as ``selection`` says."""

    def rank(instance: Instance) -> int:
        try:
            return _KILL_FIRST.index(instance.condition)
        except ValueError:
            return len(_KILL_FIRST)

    def age(instance: Instance) -> int:
        since = instance.since.millis if instance.since is not None else 0
        return -since if selection is KillSelection.YOUNGEST_FIRST else since

    return sorted(instances, key=lambda i: (rank(i), age(i)))
