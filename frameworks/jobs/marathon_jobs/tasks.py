"""From a job to a Mesos task, with this project's plugins: placement and containers.

A job's ``constraints`` are checked by the constraint plugins' operators
(``marathon_core.contracts.placement``) and its ``container`` built by the container
runtimes (``marathon_core.contracts.runtimes``), both found through the plugin host, so
a job is placed and contained exactly as a Marathon app is. Chronos's container JSON
(``{"type": "DOCKER", "image": ..., "network": ..., "volumes": [...]}``) is read as the
Marathon app container it stands for, and validated by the same rules (a problem is a
400 here, as Chronos answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from marathon_core.contracts.placement import ConstraintOperator, OfferView, Placed
from marathon_core.contracts.runtimes import ContainerRuntime
from marathon_core.errors import UserError, ValidationError
from marathon_core.framework import Offer
from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import parse_app
from marathon_core.model.validation import ValidationContext
from marathon_jobs.book import Run
from marathon_jobs.model import BadJob, Job, iso

__all__ = [
    "Placement",
    "Resources",
    "agent_fields",
    "agent_view",
    "fits",
    "placed_of",
    "stored_view",
    "task_info",
]

#: The keys :func:`agent_fields` stores the agent's hostname and fault domain under
#: (constraint field names, so no Mesos attribute can take their place).
HOSTNAME, REGION, ZONE = "hostname", "@region", "@zone"


@attrs.frozen
class Placement:
    """The plugin registries a job needs, merged once at startup."""

    operators: Mapping[str, ConstraintOperator] = attrs.field(factory=dict)
    runtimes: Mapping[str, ContainerRuntime] = attrs.field(factory=dict)
    role: str = "*"

    def as_app(self, job: Job) -> AppDefinition:
        """The Marathon app a job stands for (its constraints and container)."""
        app: dict[str, Any] = {
            "id": "/marathon-jobs/job",
            "cmd": job.command or None,
            "cpus": job.cpus,
            "mem": job.mem,
            "disk": job.disk,
            "constraints": [list(c) for c in job.constraints],
            "portDefinitions": [],
        }
        if job.container is not None:
            app["container"], networks = _marathon_container(job.container)
            if networks:
                app["networks"] = networks
        context = ValidationContext(
            constraint_operators=self.operators, container_runtimes=self.runtimes,
            mesos_role=self.role,
        )  # fmt: skip
        try:
            return parse_app(app, context=context)
        except ValidationError as exc:
            reasons = "; ".join(f"{v.path.lstrip('/')}: {v.message}" for v in exc.violations)
            raise BadJob(f"job '{job.name}': {reasons}") from None
        except UserError as exc:
            raise BadJob(f"job '{job.name}': {exc}") from None


def _marathon_container(container: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    kind = str(container.get("type", "DOCKER")).upper()
    out: dict[str, Any] = {"type": kind}
    if container.get("image"):
        docker: dict[str, Any] = {"image": container["image"]}
        if "forcePullImage" in container:
            docker["forcePullImage"] = container["forcePullImage"]
        if kind == "DOCKER" and container.get("parameters"):
            docker["parameters"] = container["parameters"]
        out["docker"] = docker
    if container.get("volumes"):
        out["volumes"] = [
            {k: v for k, v in volume.items() if k in ("containerPath", "hostPath", "mode")}
            for volume in container["volumes"]
        ]
    network = str(container.get("network", "HOST")).upper()
    if network != "BRIDGE":
        return out, []
    out["portMappings"] = []  # a job serves no ports (Marathon would map one by default)
    return out, [{"mode": "container/bridge"}]


@attrs.define
class Resources:
    """What is left of an offer while runs are fitted into it."""

    cpus: float
    mem: float
    disk: float

    @classmethod
    def of(cls, offer: Offer, role: str) -> Resources:
        free = {"cpus": 0.0, "mem": 0.0, "disk": 0.0}
        for resource in offer.resources:
            usable = resource.reservation_role in ("*", role) and not resource.revocable
            if resource.name in free and resource.scalar is not None and usable:
                free[resource.name] += resource.scalar
        return cls(**free)

    def take(self, job: Job) -> bool:
        if job.cpus > self.cpus + 1e-9 or job.mem > self.mem + 1e-9 or job.disk > self.disk + 1e-9:
            return False
        self.cpus -= job.cpus
        self.mem -= job.mem
        self.disk -= job.disk
        return True


def agent_view(offer: Offer) -> OfferView:
    """The offer's agent as constraint operators see it."""
    return OfferView(
        hostname=offer.hostname, agent_id=offer.agent_id, attributes=offer.attributes,
        region=offer.region, zone=offer.zone,
    )  # fmt: skip


def agent_fields(view: OfferView) -> tuple[tuple[str, str], ...]:
    """What a run stores of its agent, so the job's constraints (and a successor) can
    count it on any field without an offer from that agent: hostname, fault domain and
    attributes."""
    domain = [(field, value) for field, value in ((REGION, view.region), (ZONE, view.zone))]
    known = [(field, value) for field, value in domain if value is not None]
    return ((HOSTNAME, view.hostname), *sorted(view.attributes.items()), *known)


def stored_view(agent_id: str, fields: Sequence[tuple[str, str]]) -> OfferView:
    """The view :func:`agent_fields` stored."""
    known = dict(fields)
    return OfferView(
        hostname=known.pop(HOSTNAME, ""), agent_id=agent_id,
        region=known.pop(REGION, None), zone=known.pop(ZONE, None), attributes=known,
    )  # fmt: skip


def placed_of(job: Job, views: Sequence[OfferView], runs: int) -> dict[str, Placed]:
    """Per constraint field, where the job's runs are (``views``: their agents, earliest
    first), as Marathon counts an app's instances; ``runs`` (the job's runs under way,
    placed or waiting) stands for the app's instance count that GROUP_BY spreads."""
    fields = {constraint[0] for constraint in job.constraints}
    return {
        field: Placed.of((view.attribute(field) for view in views), instances=max(runs, 1))
        for field in fields
    }


def fits(job: Job, offer: Offer, placement: Placement, placed: Mapping[str, Placed]) -> bool:
    """Whether every constraint of ``job`` accepts the offer's agent, given where the
    job's runs already are (``placed``, from :func:`placed_of`)."""
    view = agent_view(offer)
    for constraint in job.constraints:
        field, operator = constraint[0], constraint[1].upper()
        value = constraint[2] if len(constraint) > 2 else None
        implementation = placement.operators.get(operator)
        if implementation is None:
            return False
        already = placed.get(field) or Placed.empty(instances=1)
        if not implementation.filter(view, field, value, already).ok:
            return False
    return True


def _resources(offer: Offer, job: Job) -> list[dict[str, Any]]:
    """The job's scalars, each carved from an offered resource that has enough of it."""
    out: list[dict[str, Any]] = []
    for name, amount in (("cpus", job.cpus), ("mem", job.mem), ("disk", job.disk)):
        if amount <= 0:
            continue
        source = next(
            (r for r in offer.resources if r.name == name and (r.scalar or 0) >= amount - 1e-9),
            None,
        )
        echoed = dict(source.echoed) if source is not None else {}
        out.append({"name": name, "type": "SCALAR", "scalar": {"value": amount}, **echoed})
    return out


def task_info(run: Run, job: Job, offer: Offer, placement: Placement) -> dict[str, Any]:
    """The TaskInfo of ``run``'s current attempt on ``offer`` (``run.task_id`` set)."""
    due = iso(datetime.fromtimestamp(run.due, UTC))
    env = [
        {"name": "CHRONOS_JOB_NAME", "value": job.name},
        {"name": "CHRONOS_JOB_OWNER", "value": job.owner},
        {"name": "CHRONOS_JOB_SCHEDULED_TIME", "value": due},
        {"name": "CHRONOS_JOB_ATTEMPT", "value": str(run.attempt)},
        {"name": "CHRONOS_RESOURCE_CPU", "value": f"{job.cpus:g}"},
        {"name": "CHRONOS_RESOURCE_MEM", "value": f"{job.mem:g}"},
        {"name": "CHRONOS_RESOURCE_DISK", "value": f"{job.disk:g}"},
        {"name": "HOST", "value": offer.hostname},
        *({"name": n, "value": v} for n, v in job.environment),
    ]
    command: dict[str, Any] = {
        "shell": job.shell,
        "environment": {"variables": env},
        "uris": [
            {"value": uri, "extract": uri.endswith((".tgz", ".tar.gz", ".zip", ".tar"))}
            for uri in job.uris
        ],
    }
    if job.command:
        command["value"] = job.command
    if job.arguments:
        command["arguments"] = list(job.arguments)
    if job.run_as_user:
        command["user"] = job.run_as_user
    assert run.task_id is not None
    info: dict[str, Any] = {
        "name": f"ChronosTask:{job.name}",
        "task_id": {"value": run.task_id},
        "agent_id": {"value": offer.agent_id},
        "resources": _resources(offer, job),
        "command": command,
        "labels": {"labels": [{"key": "chronos_job", "value": job.name}]},
    }
    if job.container is not None:
        app = placement.as_app(job)
        assert app.container is not None
        runtime = placement.runtimes.get(app.container.type)
        if runtime is None:
            raise BadJob(f"no runtime for container type {app.container.type}")
        runtime.build_task_info(app=app, task_info=info, host_ports=[])
    return info
