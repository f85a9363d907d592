"""Hook implementations of marathon-ui: its pages as routes of the REST frontend, and
logging in to them (``login.py``) when a plugin authenticates callers."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from marathon_core import hookimpl
from marathon_core.config import Config, OptionParser
from marathon_core.errors import ConfigError
from marathon_core.hookspecs import HookEnabler, HookspecAdder
from marathon_core.plugins import PluginHost
from marathon_ui import hookspecs, login
from marathon_ui.sessions import IDLE_SECONDS, LIFETIME_SECONDS, SessionStore
from marathon_ui.views import ROUTES

#: The plugin's name (its entry point); its session hooks are enabled under it.
PLUGIN_NAME = "ui"


@hookimpl
def marathon_addhooks(pluginmanager: HookspecAdder) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def marathon_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--ui_session_idle_timeout",
        type=float,
        default=IDLE_SECONDS,
        help="Seconds a UI login session may go unused before it ends",
    )
    parser.addoption(
        "--ui_session_lifetime",
        type=float,
        default=LIFETIME_SECONDS,
        help="Seconds after logging in to the UI when its session ends, used or not",
    )


@hookimpl(trylast=True)  # after the auth plugins have enabled their hooks
def marathon_configure(config: Config, plugins: HookEnabler) -> None:
    idle, lifetime = config.option("ui_session_idle_timeout"), config.option("ui_session_lifetime")
    if idle <= 0 or lifetime <= 0:
        raise ConfigError("--ui_session_idle_timeout and --ui_session_lifetime must be positive")
    if isinstance(plugins, PluginHost) and _others_authenticate(plugins):
        store = SessionStore(idle=idle, lifetime=lifetime)
        plugins.enable(PLUGIN_NAME, login.SessionHooks(plugins, store))


def _others_authenticate(host: PluginHost) -> bool:
    """Whether a plugin other than this one (enabled by an earlier configure)
    authenticates callers."""
    ours = host.manager.get_plugin(f"{PLUGIN_NAME}.enabled")
    impls = host.manager.hook.marathon_authenticate.get_hookimpls()
    return any(impl.plugin is not ours for impl in impls)


@hookimpl(optionalhook=True)  # marathon-rest's hook: nothing to serve without it
def marathon_rest_routes() -> Sequence[BaseRoute]:
    return [
        Mount(
            "/ui", routes=[*login.ROUTES, *ROUTES], middleware=[Middleware(login.ShowSessionUser)]
        )
    ]
