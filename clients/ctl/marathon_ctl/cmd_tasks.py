"""``task list|kill|logs``: tasks, and their stdout/stderr from the agents' sandboxes."""

from __future__ import annotations

import time

import click

from marathon_ctl.common import (
    Item,
    app_path,
    json_option,
    print_json,
    print_listing,
    quiet_option,
    session,
)
from marathon_ctl.errors import OK

#: How often ``task logs -f`` asks the agent for more.
FOLLOW_SECONDS = 1.0


@click.group()
def task() -> None:
    """Tasks: list, kill, logs."""


@task.command("list")
@click.argument("app_id", required=False)
@json_option
@quiet_option
def task_list(app_id: str | None, as_json: bool, quiet: bool) -> int:
    """The running tasks, of every app or of APP_ID."""
    client = session().client
    if app_id:
        tasks = client.get(f"/v2/apps{app_path(app_id)}/tasks")["tasks"]
    else:
        tasks = client.get("/v2/tasks")["tasks"]
    tasks.sort(key=lambda t: (t.get("appId", ""), t.get("startedAt") or "", t["id"]))
    return print_listing(
        tasks,
        raw={"tasks": tasks},
        as_json=as_json,
        quiet=quiet,
        item_id=lambda t: str(t["id"]),
        headers=("ID", "APP", "HOST", "STATE", "HEALTH", "PORTS", "STARTED"),
        row=lambda t: (
            t["id"],
            t.get("appId"),
            t.get("host"),
            t.get("state"),
            _health(t),
            ",".join(str(p) for p in t.get("ports") or []) or None,
            t.get("startedAt"),
        ),
    )


def _health(t: Item) -> str | None:
    results = t.get("healthCheckResults")
    if not results:
        return None
    return "healthy" if all(r.get("alive") for r in results) else "unhealthy"


@task.command("kill")
@click.argument("task_ids", nargs=-1, required=True)
@click.option(
    "--scale", is_flag=True, help="Lower the apps' instances instead of replacing the tasks."
)
@click.option("--wipe", is_flag=True, help="Also forget the tasks' reservations.")
@json_option
def task_kill(task_ids: tuple[str, ...], scale: bool, wipe: bool, as_json: bool) -> int:
    """Kill tasks (Marathon replaces them unless --scale)."""
    result = session().client.request(
        "POST",
        "/v2/tasks/delete",
        params={"scale": scale, "wipe": wipe},
        body={"ids": list(task_ids)},
    )
    if as_json:
        print_json(result)
    elif isinstance(result, dict) and result.get("deploymentId"):
        click.echo(f"deployment {result['deploymentId']} started (version {result.get('version')})")
    else:
        for t in (result or {}).get("tasks", []):
            click.echo(f"killed {t.get('id')}")
    return OK


@task.command("logs")
@click.argument("task_id")
@click.option("--stderr", "stream", flag_value="stderr", help="stderr instead of stdout.")
@click.option("--stdout", "stream", flag_value="stdout", default=True, hidden=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing what the task writes.")
@click.option(
    "--mesos-url",
    metavar="URL",
    help="The Mesos master, to find the task's agent (env MESOS_MASTER_URL; "
    "default: the master the leader is subscribed to, from /v2/info).",
)
def task_logs(task_id: str, stream: str, follow: bool, mesos_url: str | None) -> int:
    """A task's stdout (or stderr) from its agent's sandbox (/files/read)."""
    from marathon_ctl.sandbox import Sandbox

    ses = session()
    sandbox = Sandbox.locate(ses.client, task_id, mesos_url=mesos_url)
    path = f"{sandbox.directory}/{stream}"
    offset = 0
    while True:
        data, offset = sandbox.read(path, offset)
        if data:
            click.echo(data, nl=False)
        if not follow:
            return OK
        if not data:
            time.sleep(FOLLOW_SECONDS)


COMMANDS = [task]
