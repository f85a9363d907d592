"""``marathon --master local`` killed with SIGKILL and started again on its state dir.

Its embedded agents die with it, so the restarted master waits for agents that never
come back (``--local_agent_reregister_timeout``), then reports them failed; the
scheduler reconciles their tasks, Mesos answers TASK_LOST, and the app runs again
on the new agents.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from marathon_core.testing.processes import local_cluster_args, running_marathon, wait_for

pytestmark = pytest.mark.processes

ARGS = (*local_cluster_args(2), "--local_agent_reregister_timeout", "3secs")


def running_tasks(url: str) -> set[str]:
    app = httpx.get(f"{url}/v2/apps/crash", timeout=5).json()["app"]
    return {t["id"] for t in app["tasks"] if t["state"] == "TASK_RUNNING"}


def test_tasks_of_agents_lost_in_a_crash_are_replaced_after_the_restart(tmp_path: Path) -> None:
    with running_marathon(*ARGS, state_dir=tmp_path) as first:
        created = httpx.post(
            f"{first.url}/v2/apps",
            json={"id": "/crash", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16},
            timeout=10,
        )
        assert created.status_code == 201
        (before,) = wait_for(lambda: running_tasks(first.url), what="a running task")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    with running_marathon(*ARGS, state_dir=tmp_path) as second:
        after = wait_for(
            lambda: (tasks := running_tasks(second.url)) and before not in tasks and tasks,
            timeout=60,
            what="a replacement task",
        )
        assert len(after) == 1
