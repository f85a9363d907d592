"""What the commands share: the session (settings, client, console) and output helpers."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from marathon_ctl.errors import OK

if TYPE_CHECKING:
    from rich.console import Console

    from marathon_ctl.client import Marathon
    from marathon_ctl.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
#: One app, group, task, queue entry or deployment as the API gives it.
Item = dict[str, Any]

#: Output width into a pipe or file (a terminal's own width is used on a terminal).
PIPE_WIDTH = 200


class Session:
    """What every command needs: the settings, a client made on first use, consoles."""

    def __init__(self, urls: Sequence[str], user: str | None, token: str | None) -> None:
        self._urls, self._user, self._token = urls, user, token
        self._client: Marathon | None = None

    @property
    def settings(self) -> Settings:
        from marathon_ctl.config import resolve

        return resolve(urls=self._urls, user=self._user, token=self._token)

    @property
    def client(self) -> Marathon:
        if self._client is None:
            from marathon_ctl.client import Marathon

            self._client = Marathon(self.settings)
        return self._client

    def new_client(self) -> Marathon:
        """A client of its own (for a thread reading the event stream)."""
        from marathon_ctl.client import Marathon

        return Marathon(self.settings)

    @staticmethod
    def console() -> Console:
        """Stdout; off a terminal without ``COLUMNS``, wide enough that lines stay whole."""
        from rich.console import Console

        wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
        return Console(highlight=False, width=PIPE_WIDTH if wide else None)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def session(ctx: click.Context | None = None) -> Session:
    found = (ctx or click.get_current_context()).find_object(Session)
    assert found is not None
    return found


def app_path(app_id: str) -> str:
    """``web`` -> ``/web``: the command line takes ids with or without the leading slash."""
    return app_id if app_id.startswith("/") else "/" + app_id


def walk_groups(group: Item) -> Iterator[Item]:
    """``group`` and every group below it (``embed=group.groups``)."""
    yield group
    for child in group.get("groups") or []:
        yield from walk_groups(child)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Marathon's JSON as is.")(f)


def quiet_option(f: F) -> F:
    return click.option("-q", "--quiet", is_flag=True, help="Ids only, one a line.")(f)


def force_option(f: F) -> F:
    return click.option(
        "--force", is_flag=True, help="Cancel deployments in the way (Marathon's force=true)."
    )(f)


def watch_options(f: F) -> F:
    f = click.option(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="Stop watching after this long and exit 3 (the deployment keeps running).",
    )(f)
    f = click.option(
        "--watch/--no-watch",
        default=None,
        help="Follow the deployment to its end (default: on a terminal).",
    )(f)
    return f


@dataclass(frozen=True)
class Change:
    """How a command sends its change and follows the deployment it starts."""

    watch: bool | None
    timeout: float | None
    as_json: bool
    #: None where the command has no ``--force`` (and sends none).
    force: bool | None = None


def change_options(*, force: bool = True) -> Callable[[F], F]:
    """``--watch/--no-watch``, ``--timeout``, ``--json`` and (with ``force``) ``--force``,
    handed to the command as one ``change`` argument: every change command takes them."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_change(
            *args: Any,
            watch: bool | None,
            timeout: float | None,
            as_json: bool,
            force: bool | None = None,
            **kwargs: Any,
        ) -> Any:
            return command(*args, change=Change(watch, timeout, as_json, force), **kwargs)

        options = watch_options(json_option(with_change))
        return cast(F, force_option(options) if force else options)

    return decorate


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, console: Console | None = None
) -> None:
    """Plain aligned columns (no box), so output stays greppable."""
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    (console or Session.console()).print(table)


def print_listing(
    items: Sequence[Item],
    *,
    raw: Any,
    as_json: bool,
    quiet: bool,
    item_id: Callable[[Item], str],
    headers: Sequence[str],
    row: Callable[[Item], Sequence[Any]],
) -> int:
    """A list command's three outputs: Marathon's JSON (``raw``), ids (``-q``), a table."""
    if as_json:
        print_json(raw)
    elif quiet:
        for item in items:
            click.echo(item_id(item))
    else:
        print_table(headers, [row(item) for item in items])
    return OK


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
