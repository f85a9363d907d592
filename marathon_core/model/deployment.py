"""Deployment plans: ordered steps of per-app actions between two root-group versions."""

from __future__ import annotations

import enum
import uuid as _uuid

import attrs

from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp

__all__ = ["ActionKind", "Deployment", "DeploymentAction", "DeploymentStep", "GroupChange"]


class ActionKind(enum.Enum):
    START = "StartApplication"
    STOP = "StopApplication"
    SCALE = "ScaleApplication"
    RESTART = "RestartApplication"


@attrs.frozen
class DeploymentAction:
    action: ActionKind
    app_id: PathId


@attrs.frozen
class DeploymentStep:
    """Actions that run in parallel; the next step starts when all are done."""

    actions: tuple[DeploymentAction, ...] = ()


@attrs.frozen
class Deployment:
    """A plan from the ``original`` root version to the ``target`` one.

    ``current_step`` counts from 1 as Marathon shows it; 0 means not started yet.
    """

    id: str
    version: Timestamp
    original_version: Timestamp | None = None
    target_version: Timestamp | None = None
    steps: tuple[DeploymentStep, ...] = ()
    current_step: int = 0
    affected_apps: tuple[PathId, ...] = ()

    @classmethod
    def new_id(cls) -> str:
        return str(_uuid.uuid4())

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    @property
    def current_actions(self) -> tuple[DeploymentAction, ...]:
        if 1 <= self.current_step <= len(self.steps):
            return self.steps[self.current_step - 1].actions
        return ()

    def affected_app_ids(self) -> frozenset[PathId]:
        """Ids this plan touches (its own list, else every action's app); drives locking."""
        if self.affected_apps:
            return frozenset(self.affected_apps)
        return frozenset(a.app_id for s in self.steps for a in s.actions)


@attrs.frozen
class GroupChange:
    """The outcome of a root-group update: the new root and its deployment."""

    root: Group
    deployment: Deployment

    @property
    def version(self) -> Timestamp:
        return self.deployment.version
