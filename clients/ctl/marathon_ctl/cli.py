"""``marathon-ctl``: the command group, global options, errors and exit codes.

Only click and the standard library are imported to build the commands; httpx and
rich come in when a command runs, so ``--help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from marathon_ctl import __version__, cmd_apps, cmd_deploy, cmd_misc, cmd_tasks
from marathon_ctl.common import Session
from marathon_ctl.errors import INTERRUPTED, USAGE_OR_API, CtlError


class CtlGroup(click.Group):
    """Exit codes as documented: 1 for usage and API errors (click's usage errors
    would be 2, which here means a failed deployment), 130 when interrupted."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args, prog_name or "marathon-ctl", complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            exc.show()
            code = USAGE_OR_API
        except click.Abort:
            click.echo("interrupted", err=True)
            code = INTERRUPTED
        except CtlError as exc:
            click.echo(str(exc), err=True)
            code = exc.exit_code
        except KeyboardInterrupt:
            code = INTERRUPTED
        sys.exit(code)


@click.group(cls=CtlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    "urls",
    multiple=True,
    metavar="URL[,URL...]",
    help="Marathon masters, tried in turn (env MARATHON_URL; default http://localhost:8080).",
)
@click.option("--user", metavar="USER:PASSWORD", help="HTTP Basic credentials (env MARATHON_USER).")
@click.option("--token", metavar="TOKEN", help="A bearer token (env MARATHON_TOKEN).")
@click.version_option(__version__, prog_name="marathon-ctl")
@click.pass_context
def cli(ctx: click.Context, urls: tuple[str, ...], user: str | None, token: str | None) -> None:
    """Deploy to Marathon and watch it happen.

    \b
    Exit codes: 0 success; 1 usage or API error; 2 the deployment failed or
    was rolled back; 3 --timeout reached (the deployment keeps running);
    130 interrupted (the deployment keeps running).
    Settings: flags, then MARATHON_URL/MARATHON_USER/MARATHON_TOKEN, then
    ~/.config/marathon-ctl/config.toml (url, user, token, mesos_url).
    """
    ctx.obj = Session(urls, user, token)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    cli()


for _module in (cmd_deploy, cmd_apps, cmd_tasks, cmd_misc):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
