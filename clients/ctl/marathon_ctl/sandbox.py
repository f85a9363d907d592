"""A task's sandbox on its agent, read through Mesos's ``/files/read``.

Marathon names a task's agent (``slaveId``, ``host``) but not the agent's port: the
Mesos master's ``/master/state`` does. The master is ``--mesos-url``, else
``MESOS_MASTER_URL``, else ``mesos_url`` of the config file, else what ``/v2/info``
says: ``mesos_leader_ui_url`` (the master the leader is subscribed to, as Marathon
and this server give it; the embedded one for ``--master local``), else ``--master``
when it is an address; without one, the agent is taken at ``host:5051``.
The agent's ``/state`` gives the executor's ``directory``, as the Mesos UI uses it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from marathon_ctl.client import Marathon
from marathon_ctl.config import config_path, read_config_file
from marathon_ctl.errors import CtlError

#: A Mesos agent's port when nothing says otherwise.
DEFAULT_AGENT_PORT = 5051
#: The most asked of ``/files/read`` at once.
READ_LENGTH = 65536


def master_url(client: Marathon, explicit: str | None) -> str | None:
    """Where the Mesos master answers, if anything says."""
    chosen = (
        explicit
        or os.environ.get("MESOS_MASTER_URL")
        or read_config_file(config_path(os.environ)).get("mesos_url")
    )
    if not chosen:
        config = client.get("/v2/info").get("marathon_config") or {}
        master = str(config.get("master") or "")
        if config.get("mesos_leader_ui_url"):
            chosen = str(config["mesos_leader_ui_url"])
        elif master.startswith(("http://", "https://")) or (":" in master and "://" not in master):
            chosen = master
    if not chosen:
        return None
    chosen = str(chosen).rstrip("/")
    return chosen if "://" in chosen else f"http://{chosen}"


def _get(http: httpx.Client, url: str, **params: Any) -> Any:
    try:
        response = http.get(url, params=params)
    except httpx.HTTPError as exc:
        raise CtlError(f"{url}: {exc}") from None
    if response.status_code >= 400:
        raise CtlError(f"{url}: {response.status_code} {response.text.strip()}")
    return response.json()


@dataclass
class Sandbox:
    http: httpx.Client
    agent: str
    directory: str

    @classmethod
    def locate(cls, client: Marathon, task_id: str, *, mesos_url: str | None) -> Sandbox:
        tasks = client.get("/v2/tasks")["tasks"]
        matches = [t for t in tasks if t["id"] == task_id] or [
            t for t in tasks if t["id"].startswith(task_id)
        ]
        if len(matches) != 1:
            found = "no running task" if not matches else f"{len(matches)} tasks"
            raise CtlError(f"{found} matches {task_id}")
        found_task = matches[0]
        http = httpx.Client(timeout=10, follow_redirects=True)  # to the leading master
        master = master_url(client, mesos_url)
        agent = f"http://{found_task['host']}:{DEFAULT_AGENT_PORT}"
        if master is not None:
            state = _get(http, f"{master}/master/state")
            for slave in state.get("slaves", []):
                if slave.get("id") == found_task.get("slaveId"):
                    agent = f"http://{slave['hostname']}:{slave['port']}"
        try:
            agent_state = _get(http, f"{agent}/state")
        except CtlError as exc:
            if master is not None:
                raise
            raise CtlError(
                f"{exc}\n(the agent's port is unknown without the Mesos master: pass --mesos-url)"
            ) from None
        directory = _directory(agent_state, found_task["id"])
        if directory is None:
            raise CtlError(f"agent {agent} does not know task {found_task['id']}")
        return cls(http, agent, directory)

    def read(self, path: str, offset: int) -> tuple[str, int]:
        """Text from ``offset`` (bytes) and the offset after it."""
        answer = _get(
            self.http, f"{self.agent}/files/read", path=path, offset=offset, length=READ_LENGTH
        )
        data = str(answer.get("data", ""))
        return data, offset + len(data.encode())


def _directory(state: dict[str, Any], task_id: str) -> str | None:
    """The sandbox of the executor that runs (or ran) ``task_id``."""
    for framework in [*state.get("frameworks", []), *state.get("completed_frameworks", [])]:
        for executor in [
            *framework.get("executors", []),
            *framework.get("completed_executors", []),
        ]:
            for key in ("tasks", "completed_tasks", "queued_tasks"):
                if any(t.get("id") == task_id for t in executor.get(key, [])):
                    return str(executor["directory"])
    return None
