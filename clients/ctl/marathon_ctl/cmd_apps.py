"""``app ...`` and ``why``: apps, their versions, and why they are not running."""

from __future__ import annotations

from typing import Any

import click

from marathon_ctl.cmd_deploy import follow_change
from marathon_ctl.common import (
    Change,
    Item,
    app_path,
    change_options,
    json_option,
    print_json,
    print_listing,
    quiet_option,
    session,
)
from marathon_ctl.errors import OK, CtlError

#: The longest command shown in ``app list``.
CMD_WIDTH = 35


@click.group()
def app() -> None:
    """Apps: list, show, versions, scale, restart, remove, roll back."""


@app.command("list")
@click.option("--group", metavar="ID", help="Only apps under this group.")
@json_option
@quiet_option
def app_list(group: str | None, as_json: bool, quiet: bool) -> int:
    """Every app with its tasks, health and deployments."""
    client = session().client
    embeds = ["apps.counts", "apps.deployments", "apps.lastTaskFailure"]
    apps = client.get("/v2/apps", embed=embeds)["apps"]
    if group:
        prefix = app_path(group).rstrip("/") + "/"
        apps = [a for a in apps if a["id"].startswith(prefix)]
    apps.sort(key=lambda a: a["id"])
    return print_listing(
        apps,
        raw={"apps": apps},
        as_json=as_json,
        quiet=quiet,
        item_id=lambda a: str(a["id"]),
        headers=("ID", "TASKS", "HEALTH", "CPUS", "MEM", "DEPLOYMENT", "CMD/IMAGE"),
        row=_app_row,
    )


def _app_row(a: Item) -> tuple[Any, ...]:
    health = (
        f"{a.get('tasksHealthy', 0)}/{a.get('tasksRunning', 0)}" if a.get("healthChecks") else None
    )
    deployments = len(a.get("deployments") or [])
    return (
        a["id"],
        f"{a.get('tasksRunning', 0)}/{a.get('instances', 0)}",
        health,
        a.get("cpus"),
        a.get("mem"),
        f"{deployments} running" if deployments else None,
        _what_runs(a),
    )


def _what_runs(a: Item) -> str:
    docker = ((a.get("container") or {}).get("docker") or {}).get("image")
    text = str(docker or a.get("cmd") or " ".join(a.get("args") or []) or "")
    return text if len(text) <= CMD_WIDTH else text[: CMD_WIDTH - 1] + "…"


@app.command("show")
@click.argument("app_id")
@click.option("--version", metavar="V", help="A stored version (an id from `app versions`).")
def app_show(app_id: str, version: str | None) -> int:
    """An app's definition and status as JSON."""
    client = session().client
    if version:
        print_json(client.get(f"/v2/apps{app_path(app_id)}/versions/{version}"))
    else:
        print_json(client.get(f"/v2/apps{app_path(app_id)}")["app"])
    return OK


@app.command("versions")
@click.argument("app_id")
@json_option
def app_versions(app_id: str, as_json: bool) -> int:
    """The stored versions of an app, newest first."""
    versions = session().client.get(f"/v2/apps{app_path(app_id)}/versions")["versions"]
    if as_json:
        print_json(versions)
    else:
        for v in versions:
            click.echo(v)
    return OK


@app.command("scale")
@click.argument("app_id")
@click.argument("instances", type=click.IntRange(min=0))
@change_options()
def app_scale(app_id: str, instances: int, change: Change) -> int:
    """Run INSTANCES instances of an app."""
    path = app_path(app_id)
    body = {"instances": instances}
    return follow_change("PUT", f"/v2/apps{path}", change, body=body, app_ids=[path])


@app.command("restart")
@click.argument("app_id")
@change_options()
def app_restart(app_id: str, change: Change) -> int:
    """Replace every instance of an app, within its upgrade strategy."""
    path = app_path(app_id)
    return follow_change("POST", f"/v2/apps{path}/restart", change, app_ids=[path])


@app.command("remove")
@click.argument("app_id")
@change_options()
def app_remove(app_id: str, change: Change) -> int:
    """Stop every instance of an app and forget it."""
    path = app_path(app_id)
    return follow_change("DELETE", f"/v2/apps{path}", change, app_ids=[path], removing=[path])


@app.command("rollback")
@click.argument("app_id")
@click.option(
    "--to", "version", metavar="V", help="The version to go back to (default: the previous one)."
)
@change_options()
def app_rollback(app_id: str, version: str | None, change: Change) -> int:
    """Deploy a stored version of an app again."""
    path = app_path(app_id)
    if version is None:
        versions = session().client.get(f"/v2/apps{path}/versions")["versions"]
        if len(versions) < 2:
            raise CtlError(f"{path} has no earlier version")
        version = str(versions[1])
    body = {"version": version}
    return follow_change("PUT", f"/v2/apps{path}", change, body=body, app_ids=[path])


@click.command()
@click.argument("app_id")
@json_option
def why(app_id: str, as_json: bool) -> int:
    """Why an app's instances are not running: its deployment's status (this server),
    else placement, backoff, last failure, health."""
    from marathon_ctl.why import deployment_status, explain, queue_entries

    client = session().client
    data = client.get(f"/v2/apps{app_path(app_id)}")["app"]
    if as_json:
        entry = queue_entries(client, [data["id"]]).get(data["id"])
        ids = [str(d.get("id")) for d in data.get("deployments") or []]
        statuses = [s for s in (deployment_status(client, i) for i in ids) if s is not None]
        print_json({"app": data, "queue": entry, "deployments": statuses})
        return OK
    for line in explain(client, data):
        click.echo(line)
    return OK


COMMANDS = [app, why]
