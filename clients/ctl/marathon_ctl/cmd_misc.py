"""``group``, ``queue``, ``delay``, ``events``, ``leader`` and ``info``."""

from __future__ import annotations

import json
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
    print_table,
    quiet_option,
    session,
    walk_groups,
)
from marathon_ctl.errors import OK


def group_path(group_id: str) -> str:
    path = group_id if group_id.startswith("/") else "/" + group_id
    return "" if path == "/" else path.rstrip("/")


@click.group()
def group() -> None:
    """Groups: list, show, scale, remove."""


@group.command("list")
@json_option
@quiet_option
def group_list(as_json: bool, quiet: bool) -> int:
    """Every group with how many apps it holds."""
    root = session().client.get("/v2/groups", embed=["group.groups", "group.apps"])
    return print_listing(
        sorted(walk_groups(root), key=lambda g: g["id"]),
        raw=root,
        as_json=as_json,
        quiet=quiet,
        item_id=lambda g: str(g["id"]),
        headers=("ID", "APPS", "GROUPS", "VERSION"),
        row=lambda g: (
            g["id"],
            len(g.get("apps") or []),
            len(g.get("groups") or []),
            g.get("version"),
        ),
    )


@group.command("show")
@click.argument("group_id")
@click.option("--version", metavar="V", help="A stored version of the group.")
def group_show(group_id: str, version: str | None) -> int:
    """A group's definition as JSON."""
    path = f"/v2/groups{group_path(group_id)}"
    print_json(session().client.get(f"{path}/versions/{version}" if version else path))
    return OK


@group.command("scale")
@click.argument("group_id")
@click.argument("factor", type=float)
@change_options()
def group_scale(group_id: str, factor: float, change: Change) -> int:
    """Scale every app of a group by FACTOR."""
    path = f"/v2/groups{group_path(group_id)}"
    # No app ids: the deployment's plan names the apps it scales.
    return follow_change("PUT", path, change, body={"scaleBy": factor}, app_ids=())


@group.command("remove")
@click.argument("group_id")
@change_options()
def group_remove(group_id: str, change: Change) -> int:
    """Remove a group and every app in it."""
    path = f"/v2/groups{group_path(group_id)}"
    group = session().client.get(path)
    apps = [a["id"] for g in walk_groups(group) for a in g.get("apps") or []]
    return follow_change("DELETE", path, change, app_ids=apps, removing=apps)


@click.group()
def queue() -> None:
    """The launch queue: apps waiting for offers."""


@queue.command("list")
@json_option
@quiet_option
def queue_list(as_json: bool, quiet: bool) -> int:
    """Apps waiting to launch, their backoff and what their offers lacked."""
    entries = session().client.get("/v2/queue")["queue"]
    return print_listing(
        entries,
        raw={"queue": entries},
        as_json=as_json,
        quiet=quiet,
        item_id=lambda e: str(e["app"]["id"]),
        headers=("APP", "WAITING", "SINCE", "BACKOFF", "OFFERS/UNUSED", "MOSTLY DECLINED"),
        row=_queue_row,
    )


def _queue_row(entry: Item) -> tuple[Any, ...]:
    summary = entry.get("processedOffersSummary") or {}
    declined = sorted(
        summary.get("rejectSummaryLastOffers") or [], key=lambda r: -r.get("declined", 0)
    )
    top = declined[0] if declined and declined[0].get("declined") else None
    time_left = (entry.get("delay") or {}).get("timeLeftSeconds")
    return (
        entry["app"]["id"],
        entry.get("count"),
        entry.get("since"),
        f"{time_left}s" if time_left else None,
        f"{summary.get('processedOffersCount', 0)}/{summary.get('unusedOffersCount', 0)}",
        f"{top['reason']} {top['declined']}/{top['processed']}" if top else None,
    )


@click.group()
def delay() -> None:
    """The launch delay (backoff) after failures."""


@delay.command("reset")
@click.argument("app_id")
def delay_reset(app_id: str) -> int:
    """Launch again now instead of after the backoff."""
    path = app_path(app_id)
    session().client.request("DELETE", f"/v2/queue{path}/delay")
    click.echo(f"delay of {path} reset")
    return OK


@click.command()
@click.option(
    "--type", "types", multiple=True, metavar="TYPE", help="Only events of TYPE (repeat)."
)
@click.option("--app", "app_id", metavar="ID", help="Only events about this app.")
@json_option
def events(types: tuple[str, ...], app_id: str | None, as_json: bool) -> int:
    """The event stream, one line per event (NDJSON with --json); Ctrl-C ends it."""
    for event_type, payload in session().client.events(types):
        about = payload.get("appId") or payload.get("runSpecId")
        if app_id and about != app_path(app_id):
            continue
        if as_json:
            click.echo(json.dumps(payload, separators=(",", ":")))
        else:
            click.echo(f"{payload.get('timestamp', '')} {event_type} {_summary(payload)}".rstrip())
    return OK


def _summary(payload: dict[str, Any]) -> str:
    keys = ("appId", "runSpecId", "instanceId", "taskId", "taskStatus", "condition", "host", "id")
    return " ".join(f"{k}={payload[k]}" for k in keys if payload.get(k))


@click.group()
def leader() -> None:
    """The leading Marathon."""


@leader.command("show")
@json_option
def leader_show(as_json: bool) -> int:
    """Which Marathon leads."""
    data = session().client.get("/v2/leader")
    if as_json:
        print_json(data)
    else:
        click.echo(data.get("leader"))
    return OK


@leader.command("abdicate")
def leader_abdicate() -> int:
    """Make the leader step down (another one is elected)."""
    data = session().client.request("DELETE", "/v2/leader")
    click.echo((data or {}).get("message", "leader abdicated"))
    return OK


@click.command()
@json_option
def info(as_json: bool) -> int:
    """Marathon's version, leader, framework id and configuration."""
    data = session().client.get("/v2/info")
    if as_json:
        print_json(data)
        return OK
    config = data.get("marathon_config") or {}
    rows = [
        ("name", data.get("name")),
        ("version", data.get("version")),
        ("leader", data.get("leader")),
        ("elected", data.get("elected")),
        ("framework id", data.get("frameworkId")),
        ("master", config.get("master")),
        ("framework name", config.get("framework_name")),
        ("ha", config.get("ha")),
    ]
    print_table(("KEY", "VALUE"), rows)
    return OK


COMMANDS = [group, queue, delay, events, leader, info]
