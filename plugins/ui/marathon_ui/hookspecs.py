"""marathon-ui's own hook: how its login pages find the sessions of the server they serve.

The sessions belong to the hooks object the UI enables on each plugin host (one per
server, so a standby and a leader in one test process keep apart); the pages reach it
through ``ServiceContext.call_extension``. Not for other plugins to implement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from marathon_core import PROJECT_NAME

if TYPE_CHECKING:
    from marathon_ui.login import SessionHooks

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def marathon_ui_login() -> SessionHooks | None:
    """The UI's session hooks of this server (its sessions, and how it checks a login);
    nothing when no plugin authenticates callers (then everyone is anonymous and there
    is nothing to log in to)."""
