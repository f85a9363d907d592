"""Chronos's job model: the job JSON users POST, and the counts ``GET /jobs`` shows.

A job is either scheduled (``schedule``: ``R[n]/start/period``) or dependent
(``parents``: it runs after each of them succeeded). Bad input raises
:class:`BadJob` with the message Chronos answers with (400).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from marathon_jobs.schedule import (
    Schedule,
    ScheduleError,
    parse_duration,
    parse_schedule,
    parse_zone,
)

__all__ = ["NAME_PATTERN", "BadJob", "Job", "JobStats", "iso", "parse_job"]

#: Chronos's ``JobUtils.jobNamePattern``.
NAME_PATTERN = r"([\w\s\.#_-]+)"
_NAME = re.compile(NAME_PATTERN)
#: Chronos's defaults (``--mesos_task_cpu``, ``--mesos_task_mem``, ``--mesos_task_disk``).
DEFAULT_CPUS, DEFAULT_MEM, DEFAULT_DISK = 0.1, 128.0, 256.0
DEFAULT_RETRIES = 2


class BadJob(ValueError):
    """Job JSON that Chronos answers 400 to; ``str()`` is the message."""


def iso(moment: datetime) -> str:
    """A time as Chronos shows it (``2026-01-01T00:00:00.000Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.frozen
class Job:
    """A job's definition: what the user POSTed, checked and with defaults filled in."""

    name: str
    command: str
    shell: bool = True
    arguments: tuple[str, ...] = ()
    cpus: float = DEFAULT_CPUS
    mem: float = DEFAULT_MEM
    disk: float = DEFAULT_DISK
    retries: int = DEFAULT_RETRIES
    owner: str = ""
    owner_name: str = ""
    description: str = ""
    disabled: bool = False
    epsilon: str = "PT60S"
    schedule: str | None = None
    schedule_time_zone: str = ""
    parents: tuple[str, ...] | None = None
    constraints: tuple[tuple[str, ...], ...] = ()
    container: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    environment: tuple[tuple[str, str], ...] = ()
    uris: tuple[str, ...] = ()
    run_as_user: str | None = None

    @property
    def epsilon_seconds(self) -> float:
        return _epsilon_seconds(self.epsilon)

    def parsed_schedule(self) -> Schedule | None:
        """The schedule (its start is a moment: :func:`parse_job` fills in "now")."""
        if self.schedule is None:
            return None
        return _stored_schedule(self.schedule, self.schedule_time_zone)

    def to_json(self) -> dict[str, Any]:
        """The definition in Chronos's field names (stored, and the base of ``GET /jobs``)."""
        out: dict[str, Any] = {
            "name": self.name,
            "command": self.command,
            "shell": self.shell,
            "arguments": list(self.arguments),
            "cpus": self.cpus,
            "mem": self.mem,
            "disk": self.disk,
            "retries": self.retries,
            "owner": self.owner,
            "ownerName": self.owner_name,
            "description": self.description,
            "disabled": self.disabled,
            "epsilon": self.epsilon,
            "constraints": [list(c) for c in self.constraints],
            "environmentVariables": [{"name": n, "value": v} for n, v in self.environment],
            "uris": list(self.uris),
        }
        if self.container is not None:
            out["container"] = dict(self.container)
        if self.run_as_user is not None:
            out["runAsUser"] = self.run_as_user
        if self.parents is not None:
            out["parents"] = list(self.parents)
        else:
            out["schedule"] = self.schedule
            out["scheduleTimeZone"] = self.schedule_time_zone
        return out


@functools.lru_cache(maxsize=4096)
def _epsilon_seconds(text: str) -> float:
    return parse_duration(text).approximate_seconds


@functools.lru_cache(maxsize=65536)
def _stored_schedule(text: str, zone: str) -> Schedule:
    """Parsed once per text: every tick reads every job's schedule."""
    return parse_schedule(text, zone, now=datetime.now(UTC))


@attrs.frozen
class JobStats:
    """What happened to a job's runs; kept with the job, shown by ``GET /jobs``."""

    success_count: int = 0
    error_count: int = 0
    missed_count: int = 0
    errors_since_last_success: int = 0
    last_success: str = ""
    last_error: str = ""
    last_missed: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "successCount": self.success_count,
            "errorCount": self.error_count,
            "missedCount": self.missed_count,
            "errorsSinceLastSuccess": self.errors_since_last_success,
            "lastSuccess": self.last_success,
            "lastError": self.last_error,
            "lastMissed": self.last_missed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobStats:
        return cls(
            success_count=int(data.get("successCount", 0)),
            error_count=int(data.get("errorCount", 0)),
            missed_count=int(data.get("missedCount", 0)),
            errors_since_last_success=int(data.get("errorsSinceLastSuccess", 0)),
            last_success=str(data.get("lastSuccess", "")),
            last_error=str(data.get("lastError", "")),
            last_missed=str(data.get("lastMissed", "")),
        )


def _number(data: Mapping[str, Any], field: str, default: float) -> float:
    value = data.get(field, default)
    try:
        number = float(value)  # Chronos's own examples send "0.5"
    except (TypeError, ValueError):
        raise BadJob(f"{field} must be a number, not {value!r}") from None
    if number < 0 or number != number:
        raise BadJob(f"{field} must not be negative")
    return number


def _strings(data: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = data.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadJob(f"{field} must be a list of strings")
    return tuple(value)


def _text(data: Mapping[str, Any], field: str, default: str = "") -> str:
    value = data.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadJob(f"{field} must be a string")
    return value


def _flag(data: Mapping[str, Any], field: str, default: bool) -> bool:
    value = data.get(field, default)
    if not isinstance(value, bool):
        raise BadJob(f"{field} must be true or false")
    return value


def load_body(body: bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError) as exc:
        raise BadJob(f"Invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadJob("a job must be a JSON object")
    return data


def parse_job(
    data: Mapping[str, Any],
    *,
    dependent: bool,
    now: datetime,
    default_epsilon: str = "PT60S",
    check_start: bool = True,
) -> Job:
    """Check a POSTed job as Chronos does; :class:`BadJob` with Chronos's message."""
    name = data.get("name")
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise BadJob(f"the job's name is invalid. Allowed names: '{NAME_PATTERN}'")
    command = _text(data, "command")
    if not command and not data.get("container"):
        raise BadJob(f"job '{name}' has no command")
    epsilon = _text(data, "epsilon", default_epsilon) or default_epsilon
    try:
        parse_duration(epsilon)
    except ScheduleError:
        raise BadJob(f"Cannot parse epsilon '{epsilon}'") from None
    schedule: str | None = None
    zone = _text(data, "scheduleTimeZone")
    parents: tuple[str, ...] | None = None
    if dependent:
        parents = _strings(data, "parents")
        if not parents:
            raise BadJob("Error, parent does not exist")
    else:
        schedule = _text(data, "schedule")
        try:
            parsed = parse_schedule(schedule, zone, now=now)
            parse_zone(zone)
        except ScheduleError as exc:
            raise BadJob(f"Cannot parse schedule '{schedule}' ({exc})") from None
        if check_start and parsed.start < now - timedelta(days=365):
            raise BadJob(
                f"Scheduled start date '{iso(parsed.start)}' is more than 1 year in the past!"
            )
        if not schedule.split("/")[1]:  # "now": keep the moment it meant
            schedule = f"{schedule.split('/')[0]}/{iso(parsed.start)}/{parsed.period.text}"
    if "uri" in data and "fetch" in data:
        raise BadJob(f"Tried to add both uri (deprecated) and fetch parameters on {name}")
    retries = data.get("retries", DEFAULT_RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise BadJob("retries must be a whole number, at least 0")
    constraints = data.get("constraints") or []
    if not isinstance(constraints, list) or not all(
        isinstance(c, list) and 2 <= len(c) <= 3 and all(isinstance(p, str) for p in c)
        for c in constraints
    ):
        raise BadJob("constraints must be a list of [field, operator] or [field, operator, value]")
    env = data.get("environmentVariables") or []
    if not isinstance(env, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("value"), str)
        for e in env
    ):
        raise BadJob("environmentVariables must be a list of {name, value} strings")
    container = data.get("container")
    if container is not None and not isinstance(container, dict):
        raise BadJob("container must be an object")
    user = data.get("runAsUser")
    return Job(
        name=name,
        command=command,
        shell=_flag(data, "shell", True),
        arguments=_strings(data, "arguments"),
        cpus=_number(data, "cpus", DEFAULT_CPUS),
        mem=_number(data, "mem", DEFAULT_MEM),
        disk=_number(data, "disk", DEFAULT_DISK),
        retries=retries,
        owner=_text(data, "owner"),
        owner_name=_text(data, "ownerName"),
        description=_text(data, "description"),
        disabled=_flag(data, "disabled", False),
        epsilon=epsilon,
        schedule=schedule,
        schedule_time_zone=zone,
        parents=parents,
        constraints=tuple(tuple(c) for c in constraints),
        container=container,
        environment=tuple((e["name"], e["value"]) for e in env),
        uris=_strings(data, "uris") + tuple(str(f.get("uri", "")) for f in data.get("fetch") or []),
        run_as_user=user if isinstance(user, str) and user else None,
    )


def job_from_json(data: Mapping[str, Any]) -> Job:
    """A stored definition (written by :meth:`Job.to_json`) read back."""
    return parse_job(
        data, dependent=data.get("parents") is not None, now=datetime.now(UTC), check_start=False
    )
