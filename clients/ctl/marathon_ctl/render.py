"""How a watched deployment looks: redrawn in place on a terminal, one line per event
elsewhere, NDJSON with ``--json``."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from marathon_ctl.errors import OK
from marathon_ctl.progress import AppProgress, DeploymentProgress, Fact

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

#: Facts kept under the live view.
RECENT_FACTS = 5
_BAR_WIDTH = 20


def counts(app: AppProgress) -> str:
    text = f"{app.new_running}/{app.target} running"
    if app.has_health:
        text += f" · {app.new_healthy}/{app.target} healthy"
    if app.old_left:
        text += f" · {app.old_left} old left"
    return text


def step_text(progress: DeploymentProgress) -> str:
    if not progress.current_step:
        return "starting"
    actions = ", ".join(progress.step_actions)
    return f"step {progress.current_step}/{progress.total_steps} {actions}".rstrip()


class LineRenderer:
    """Off a terminal: a line per fact, the apps' counts after each instance change."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def fact(self, fact: Fact, progress: DeploymentProgress) -> None:
        app = progress.apps.get(str(fact.event.get("runSpecId") or fact.event.get("appId")))
        suffix = f" ({app.app_id} {counts(app)})" if app is not None else ""
        self.console.print(f"{fact.time} {fact.text}{suffix}", highlight=False, soft_wrap=True)

    def waiting(self, reasons: list[str], progress: DeploymentProgress) -> None:
        for reason in reasons:
            self.console.print(f"  waiting: {reason}", highlight=False, soft_wrap=True)

    def refresh(self, progress: DeploymentProgress) -> None:
        pass

    def stop(self) -> None:
        pass

    def finish(self, progress: DeploymentProgress, exit_code: int, note: str) -> None:
        for app in progress.apps.values():
            self.console.print(f"{app.app_id}: {counts(app)}", highlight=False, soft_wrap=True)
        mark = "✓" if exit_code == OK else "!"
        self.console.print(f"{mark} {note}", highlight=False, soft_wrap=True)


class JsonRenderer:
    """``--json``: each event as Marathon sent it, our notes as ``ctl_*`` events."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def _emit(self, data: dict[str, Any]) -> None:
        self.console.out(json.dumps(data, separators=(",", ":")), highlight=False)

    def fact(self, fact: Fact, progress: DeploymentProgress) -> None:
        self._emit(fact.event)

    def waiting(self, reasons: list[str], progress: DeploymentProgress) -> None:
        self._emit({"eventType": "ctl_waiting", "reasons": reasons})

    def refresh(self, progress: DeploymentProgress) -> None:
        pass

    def stop(self) -> None:
        pass

    def finish(self, progress: DeploymentProgress, exit_code: int, note: str) -> None:
        apps = {
            a.app_id: {"target": a.target, "running": a.new_running, "oldLeft": a.old_left}
            for a in progress.apps.values()
        }
        self._emit(
            {
                "eventType": "ctl_result",
                "deploymentId": progress.deployment_id,
                "outcome": progress.outcome or "running",
                "exitCode": exit_code,
                "message": note,
                "apps": apps,
            }
        )


class LiveRenderer:
    """On a terminal: the steps, a bar per app, why it waits and the latest facts,
    redrawn in place; the final state stays on screen."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self.console = console
        self.started = time.monotonic()
        self.reasons: list[str] = []
        self.recent: list[str] = []
        self.live: Live = Live(console=console, refresh_per_second=8, transient=False)
        self.live.start()

    def _view(self, progress: DeploymentProgress, footer: str | None = None) -> RenderableType:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        elapsed = int(time.monotonic() - self.started)
        title = (
            f"deployment {progress.deployment_id} · {step_text(progress)}"
            f"  {elapsed // 60:02d}:{elapsed % 60:02d}"
        )
        head: RenderableType = (
            Text(footer) if footer else Spinner("dots", text=Text(title), style="cyan")
        )
        table = Table.grid(padding=(0, 2))
        for app in progress.apps.values():
            done = min(app.new_running, app.target)
            filled = _BAR_WIDTH * done // app.target if app.target else _BAR_WIDTH
            bar = Text("█" * filled, style="green") + Text("░" * (_BAR_WIDTH - filled))
            table.add_row(Text(app.app_id, style="bold"), bar, Text(counts(app)))
        parts: list[RenderableType] = [head, table]
        if self.reasons and footer is None:
            parts.append(Text("! waiting:", style="yellow bold"))
            parts.extend(Text(f"   {reason}", style="yellow") for reason in self.reasons)
        parts.extend(Text(f"   {line}", style="dim") for line in self.recent)
        return Group(*parts)

    def fact(self, fact: Fact, progress: DeploymentProgress) -> None:
        self.recent = [*self.recent, f"{fact.time} {fact.text}"][-RECENT_FACTS:]
        self.reasons = []
        self.live.update(self._view(progress))

    def waiting(self, reasons: list[str], progress: DeploymentProgress) -> None:
        self.reasons = reasons
        self.live.update(self._view(progress))

    def refresh(self, progress: DeploymentProgress) -> None:
        self.live.update(self._view(progress))

    def finish(self, progress: DeploymentProgress, exit_code: int, note: str) -> None:
        mark = "✓" if exit_code == OK else "!"
        self.live.update(self._view(progress, footer=f"{mark} {note}"))
        self.live.stop()
        if exit_code != OK and self.reasons:
            for reason in self.reasons:
                self.console.print(f"   {reason}", highlight=False)

    def stop(self) -> None:
        self.live.stop()
