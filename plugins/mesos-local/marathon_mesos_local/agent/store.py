"""The agent's table of tasks and default executors, and its checkpoints.

Checkpoints: ``meta/agent.json`` (agent id and boot id) and one JSON file per task
under ``meta/tasks/<framework>/<task>.json`` (TaskInfo, container id, state, the
updates not yet acknowledged), written atomically at every change. An agent restarted
on the same boot of its machine recovers its tasks, and their default executors, from
them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

from marathon_mesos_local.agent.model import ExecutorRun, TaskRun
from marathon_mesos_local.messages import TERMINAL_STATES

__all__ = ["TaskStore"]

log = logging.getLogger(__name__)


class TaskStore:
    """Tasks and default executors by (framework id, id), checkpointed under ``meta``."""

    def __init__(self, meta: Path, boot_id: str | None) -> None:
        self.meta = meta
        self.boot_id = boot_id
        self.tasks: dict[tuple[str, str], TaskRun] = {}
        #: Default executors by (framework id, executor id).
        self.executors: dict[tuple[str, str], ExecutorRun] = {}

    def _task_file(self, task: TaskRun) -> Path:
        return self.meta / "tasks" / task.framework_id / f"{task.id}.json"

    def save_agent(self, agent_id: str | None) -> None:
        _write_json(self.meta / "agent.json", {"agent_id": agent_id, "boot_id": self.boot_id})

    def save(self, task: TaskRun) -> None:
        """Checkpoint a task of the table (a task no longer in it stays forgotten)."""
        if self.tasks.get((task.framework_id, task.id)) is not task:
            return
        _write_json(
            self._task_file(task),
            {
                "framework_id": task.framework_id,
                "framework_info": task.framework_info,
                "info": task.info,
                "run_id": task.run_id,
                "sandbox": str(task.sandbox),
                "state": task.state,
                "killed": task.killed,
                "container_id": task.container_id,
                "containerizer": task.containerizer,
                "group": list(task.group),
                "updates": list(task.updates),
            },
        )

    def forget(self, task: TaskRun) -> None:
        self.tasks.pop((task.framework_id, task.id), None)
        self._task_file(task).unlink(missing_ok=True)

    def recover(self) -> tuple[str | None, list[TaskRun]]:
        """The id and the tasks of an earlier run of this agent on the same boot of its
        machine, put back in the table (no id and no task after another boot)."""
        try:
            agent = json.loads((self.meta / "agent.json").read_text())
        except (OSError, ValueError):
            return None, []
        if agent.get("boot_id") != self.boot_id:
            log.info("checkpoints are from another boot; starting afresh")
            with contextlib.suppress(OSError):
                (self.meta / "agent.json").unlink()
            for path in self.meta.glob("tasks/*/*.json"):
                path.unlink(missing_ok=True)
            return None, []
        agent_id: str | None = agent.get("agent_id")
        recovered = []
        for path in sorted(self.meta.glob("tasks/*/*.json")):
            try:
                data = json.loads(path.read_text())
                task = TaskRun(
                    data["framework_id"],
                    data["framework_info"],
                    data["info"],
                    data["run_id"],
                    Path(data["sandbox"]),
                    state=data["state"],
                    killed=data.get("killed", False),
                    updates=deque(data.get("updates", [])),
                    container_id=data.get("container_id"),
                    containerizer=data.get("containerizer"),
                    group=tuple(data.get("group", ())),
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable checkpoint %s: %s", path, exc)
                continue
            self.tasks[(task.framework_id, task.id)] = task
            if task.group and task.state not in TERMINAL_STATES:
                # The executor lives on while a task of it runs: <executor run>/tasks/<task>.
                key = (task.framework_id, task.executor_id)
                executor = self.executors.setdefault(
                    key,
                    ExecutorRun(
                        task.framework_id, task.info["executor"], task.sandbox.parent.parent
                    ),
                )
                executor.live.add(task.id)
            recovered.append(task)
        log.info("recovered agent %s with %d task(s)", agent_id, len(recovered))
        return agent_id, recovered


def _write_json(path: Path, value: Any) -> None:
    """Write a checkpoint atomically (a crash leaves the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)
