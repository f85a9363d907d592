"""``deploy``, ``diff`` and ``deployment ...``: changes and how they are followed."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from marathon_ctl.common import (
    Change,
    app_path,
    change_options,
    json_option,
    print_listing,
    quiet_option,
    session,
    stdout_is_terminal,
    walk_groups,
)
from marathon_ctl.errors import OK, CtlError

if TYPE_CHECKING:
    from rich.console import Console

    from marathon_ctl.watch import EventFeed, Renderer


def load_definition(source: str) -> dict[str, Any]:
    """The JSON of FILE, or of stdin for ``-``."""
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as file:
                text = file.read()
        data = json.loads(text)
    except OSError as exc:
        raise CtlError(f"{source}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CtlError(f"{source}: not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise CtlError(f"{source}: not an app or group definition (a JSON object with an id)")
    return data


def is_group(definition: dict[str, Any]) -> bool:
    return "apps" in definition or "groups" in definition


def follow_change(
    method: str,
    path: str,
    change: Change,
    *,
    body: Any = None,
    app_ids: Iterable[str],
    removing: Iterable[str] = (),
) -> int:
    """Send a change (Marathon answers ``{deploymentId, version}``) and, if watching,
    follow its deployment to the end; the exit code. ``removing``: apps the change
    removes, which end gone rather than at a version."""
    from marathon_ctl.watch import EventFeed

    ses = session()
    watch = stdout_is_terminal() if change.watch is None else change.watch
    # Opened before the change is sent, so that none of its events is missed.
    feed = EventFeed(ses.new_client()).start() if watch else None
    try:
        params = {} if change.force is None else {"force": change.force}
        result = ses.client.request(method, path, params=params, body=body) or {}
        return _follow(
            result, feed, app_ids, removing, timeout=change.timeout, as_json=change.as_json
        )
    finally:
        if feed is not None:
            feed.close()


def _follow(
    result: dict[str, Any],
    feed: EventFeed | None,
    app_ids: Iterable[str],
    removing: Iterable[str],
    *,
    timeout: float | None,
    as_json: bool,
) -> int:
    from marathon_ctl.render import LineRenderer
    from marathon_ctl.watch import follow, start_progress

    ses = session()
    deployment_id = str(result.get("deploymentId") or "")
    version = str(result.get("version") or "")
    console = ses.console()
    if feed is None or not deployment_id:
        if as_json:
            console.out(json.dumps(result), highlight=False)
        elif deployment_id:
            console.print(f"deployment {deployment_id} started (version {version})", soft_wrap=True)
        return OK
    client = ses.client
    affected = set(app_ids)
    for deployment in client.get("/v2/deployments"):
        if deployment.get("id") == deployment_id:
            affected |= set(deployment.get("affectedApps") or [])
    progress = start_progress(client, deployment_id, version, sorted(affected))
    for app_id in removing:
        if app_id in progress.apps:
            progress.apps[app_id].removed = True
    renderer = _renderer(console, as_json)
    if isinstance(renderer, LineRenderer):
        console.print(f"deployment {deployment_id} started (version {version})", soft_wrap=True)
    try:
        return follow(client, feed, progress, renderer, timeout=timeout, expected_apps=affected)
    finally:
        renderer.stop()


def _renderer(console: Console, as_json: bool) -> Renderer:
    from marathon_ctl.render import JsonRenderer, LineRenderer, LiveRenderer

    if as_json:
        return JsonRenderer(console)
    if stdout_is_terminal():
        return LiveRenderer(console)
    return LineRenderer(console)


@click.command()
@click.argument("source", metavar="FILE|-")
@change_options()
def deploy(source: str, change: Change) -> int:
    """Create or update the app or group of FILE (- for stdin) and follow its deployment."""
    from marathon_ctl.diff import group_apps

    definition = load_definition(source)
    target = app_path(definition["id"])
    if is_group(definition):
        path, app_ids = f"/v2/groups{target}", list(group_apps(definition))
    else:
        path, app_ids = f"/v2/apps{target}", [target]
    return follow_change("PUT", path, change, body=definition, app_ids=app_ids)


@click.command()
@click.argument("source", metavar="FILE|-")
def diff(source: str) -> int:
    """What deploying FILE would change, against the running version."""
    from marathon_ctl.diff import absolute, group_apps, plan, removed_apps

    definition = load_definition(source)
    client = session().client
    removed: list[str] = []
    running_apps: dict[str, dict[str, Any]] = {}
    if is_group(definition):
        group_id = absolute(definition["id"], "/")
        local = group_apps(definition)
        embed = ["group.groups", "group.apps"]
        group = client.find(f"/v2/groups{group_id}", embed=embed) or {}
        running_apps = {str(a["id"]): a for g in walk_groups(group) for a in g.get("apps") or []}
        removed = removed_apps(definition, group) if group else []
    else:
        local = {absolute(definition["id"], "/"): definition}
    running = {app_id: running_apps.get(app_id) or client.app(app_id) for app_id in local}
    for line in plan(local, running, removed):
        click.echo(line)
    return OK


@click.group()
def deployment() -> None:
    """Running deployments: list, watch, roll back, stop."""


@deployment.command("list")
@json_option
@quiet_option
def deployment_list(as_json: bool, quiet: bool) -> int:
    """The running deployments and their progress."""
    deployments = session().client.get("/v2/deployments")
    return print_listing(
        deployments,
        raw=deployments,
        as_json=as_json,
        quiet=quiet,
        item_id=lambda d: str(d["id"]),
        headers=("ID", "APPS", "ACTIONS", "STEP", "VERSION"),
        row=lambda d: (
            d["id"],
            ", ".join(d.get("affectedApps") or []),
            ", ".join(sorted({a["action"] for a in d.get("currentActions") or []})),
            f"{d.get('currentStep', 0)}/{d.get('totalSteps', 0)}",
            d.get("version"),
        ),
    )


@deployment.command("watch")
@click.argument("deployment_id")
@click.option("--timeout", type=float, metavar="SECONDS", help="Exit 3 after this long.")
@json_option
def deployment_watch(deployment_id: str, timeout: float | None, as_json: bool) -> int:
    """Follow a running deployment to its end (exit 0, or 2 if it fails or is rolled back)."""
    from marathon_ctl.watch import EventFeed

    ses = session()
    feed = EventFeed(ses.new_client()).start()
    try:
        return _watch_running(feed, deployment_id, timeout=timeout, as_json=as_json)
    finally:
        feed.close()


def _watch_running(
    feed: EventFeed, deployment_id: str, *, timeout: float | None, as_json: bool
) -> int:
    from marathon_ctl.render import LineRenderer
    from marathon_ctl.watch import follow, start_progress

    ses = session()
    found = [d for d in ses.client.get("/v2/deployments") if d.get("id") == deployment_id]
    if not found:
        raise CtlError(f"deployment {deployment_id} is not running")
    affected = list(found[0].get("affectedApps") or [])
    progress = start_progress(ses.client, deployment_id, str(found[0].get("version")), affected)
    progress.current_step = int(found[0].get("currentStep") or 0)
    progress.total_steps = int(found[0].get("totalSteps") or 0)
    stops = {
        a["app"]
        for a in found[0].get("currentActions") or []
        if a.get("action") == "StopApplication"
    }
    for app_id in stops & set(progress.apps):
        progress.apps[app_id].removed = True
    console = ses.console()
    renderer = _renderer(console, as_json)
    if isinstance(renderer, LineRenderer):
        console.print(
            f"watching deployment {deployment_id} ({', '.join(affected)})", soft_wrap=True
        )
    try:
        return follow(ses.client, feed, progress, renderer, timeout=timeout, expected_apps=affected)
    finally:
        renderer.stop()


@deployment.command("rollback")
@click.argument("deployment_id")
@change_options(force=False)  # force=true would stop it instead (deployment stop)
def deployment_rollback(deployment_id: str, change: Change) -> int:
    """Cancel a deployment and deploy the reverse change."""
    affected = [
        a
        for d in session().client.get("/v2/deployments")
        if d.get("id") == deployment_id
        for a in d.get("affectedApps") or []
    ]
    return follow_change("DELETE", f"/v2/deployments/{deployment_id}", change, app_ids=affected)


@deployment.command("stop")
@click.argument("deployment_id")
def deployment_stop(deployment_id: str) -> int:
    """Cancel a deployment and leave its apps as they are (Marathon's force=true)."""
    session().client.request("DELETE", f"/v2/deployments/{deployment_id}", params={"force": "true"})
    click.echo(f"deployment {deployment_id} stopped")
    return OK


COMMANDS = [deploy, diff, deployment]
