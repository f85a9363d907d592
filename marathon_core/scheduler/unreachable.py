"""The unreachable strategy: when an Unreachable instance is replaced, and when forgotten.

Applied by the status updates (the moment an instance becomes Unreachable) and by the
timers (every tick after that), so it is one pure function of the instance, its app
and the time.
"""

from __future__ import annotations

import attrs

from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import Timestamp
from marathon_core.model.instance import Condition, Goal, Instance, InstanceId

__all__ = ["UNREACHABLE", "apply_unreachable_strategy"]

#: Conditions the unreachable strategy acts on.
UNREACHABLE = frozenset({Condition.UNREACHABLE, Condition.UNREACHABLE_INACTIVE})


def apply_unreachable_strategy(
    instance: Instance,
    app: AppDefinition | None,
    now: Timestamp,
    replacements: list[Instance],
    finals: list[Instance],
) -> Instance | None:
    """``instance`` (Unreachable or UnreachableInactive) after its app's strategy at ``now``.

    After ``inactive_after_seconds`` it becomes UnreachableInactive and, if it should
    run, a new Scheduled instance goes to ``replacements``; after
    ``expunge_after_seconds`` it is to be expunged: None is returned and its last
    state goes to ``finals`` (for the events).
    """
    if app is None or not app.unreachable_strategy.enabled or instance.since is None:
        return instance
    strategy = app.unreachable_strategy
    elapsed = (now.millis - instance.since.millis) / 1000
    if instance.condition is Condition.UNREACHABLE and elapsed >= strategy.inactive_after_seconds:
        instance = attrs.evolve(instance, condition=Condition.UNREACHABLE_INACTIVE)
        if instance.goal is Goal.RUNNING:
            replacements.append(
                Instance(
                    instance_id=InstanceId.new(app.id),
                    condition=Condition.SCHEDULED,
                    run_spec_version=instance.run_spec_version,
                    role=instance.role,
                    since=now,
                )
            )
    if elapsed >= strategy.expunge_after_seconds and (
        instance.condition is Condition.UNREACHABLE_INACTIVE or instance.goal is not Goal.RUNNING
    ):
        finals.append(instance)
        return None
    return instance
