"""The server's configuration: Marathon's flag names and defaults, built once.

Core flags are the fields of :class:`Config`; each field's metadata says how it
appears on the command line, so the flag table exists once. Plugins add options
through the ``marathon_addoption`` hook; their values land in
:attr:`Config.plugin_options`. Every option can also come from the environment as
``MARATHON_<NAME>`` (``MARATHON_HTTP_PORT=9090``), as with Marathon; the command
line wins. Durations keep Marathon's units (milliseconds unless the name says
otherwise) so that existing deployment scripts carry over unchanged.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from marathon_core.errors import ConfigError

__all__ = ["Config", "OptionParser", "default_state_dir", "parse_config"]

ENV_PREFIX = "MARATHON_"


def default_state_dir() -> str:
    """Where SQLite state lives by default: ``$XDG_STATE_HOME/marathon`` or ``~/.local/state``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return os.path.join(base, "marathon")


def _flag(default: Any, help: str, *, kind: type = str, negatable: bool = False) -> Any:
    return attrs.field(
        default=default, metadata={"help": help, "kind": kind, "negatable": negatable}
    )


@attrs.frozen(kw_only=True)
class Config:
    """Every core flag, typed; ``plugin_options`` holds what plugins registered."""

    # Mesos
    master: str = _flag(
        "local", "Mesos master: 'local' (embedded), http://host:5050, host:5050 or zk://.../mesos"
    )
    framework_name: str = _flag("marathon", "Framework name registered with Mesos")
    failover_timeout: int = _flag(
        604800, "Seconds Mesos keeps our tasks while no scheduler is connected", kind=int
    )
    checkpoint: bool = _flag(
        True, "Ask agents to checkpoint tasks (survive agent restarts)", kind=bool, negatable=True
    )
    mesos_role: str = _flag("*", "Mesos role the framework registers with and apps default to")
    mesos_user: str | None = _flag(
        None,
        "User of tasks whose app names none (default: marathon's user; 'nobody' on the "
        "embedded cluster when marathon runs as root)",
    )
    mesos_authentication: bool = _flag(
        False,
        "Authenticate to the Mesos master (HTTP Basic on every scheduler call) as "
        "--mesos_authentication_principal with the secret of "
        "--mesos_authentication_secret_file (Marathon's flag; needs the principal)",
        kind=bool,
        negatable=True,
    )
    mesos_authentication_principal: str | None = _flag(
        None,
        "Principal Marathon registers with (FrameworkInfo.principal, with or without "
        "--mesos_authentication) and authenticates as",
    )
    mesos_authentication_secret_file: str | None = _flag(
        None,
        "File holding the secret of --mesos_authentication_principal; used only with "
        "--mesos_authentication",
    )
    webui_url: str | None = _flag(None, "Web UI URL announced to Mesos")
    mesos_heartbeat_interval: int = _flag(15000, "Expected Mesos heartbeat interval (ms)", kind=int)
    mesos_heartbeat_failure_threshold: int = _flag(
        5, "Missed heartbeats before re-subscribing", kind=int
    )
    # ZooKeeper and high availability
    zk: str | None = _flag(None, "ZooKeeper state and election: zk://host:port[,host:port]/path")
    zk_timeout: int = _flag(10000, "ZooKeeper operation timeout (ms)", kind=int)
    zk_session_timeout: int = _flag(10000, "ZooKeeper session timeout (ms)", kind=int)
    zk_max_versions: int = _flag(50, "Versions kept per app and group", kind=int)
    ha: bool = _flag(True, "Run leader election when --zk is given", kind=bool, negatable=True)
    state_dir: str = _flag(default_state_dir(), "Directory of the SQLite state (without --zk)")
    # HTTP
    http_port: int = _flag(8080, "Port of the HTTP API", kind=int)
    http_address: str | None = _flag(
        None,
        "Address the HTTP API binds to (default: 127.0.0.1 without an authentication "
        "plugin, all addresses with one)",
    )
    https_port: int | None = _flag(
        None, "Port of the HTTPS API (needs --ssl_cert and --ssl_key)", kind=int
    )
    https_address: str | None = _flag(
        None, "Address the HTTPS API binds to (default: as --http_address)"
    )
    ssl_cert: str | None = _flag(None, "PEM file of the HTTPS certificate (chain)")
    ssl_key: str | None = _flag(None, "PEM file of the HTTPS private key")
    ssl_ca: str | None = _flag(
        None,
        "PEM file of the CAs a standby trusts when it forwards to the leader over HTTPS "
        "(default: the system's)",
    )
    disable_http: bool = _flag(False, "Serve HTTPS only (needs --https_port)", kind=bool)
    insecure_bind_any: bool = _flag(
        False,
        "Allow the API to bind a non-loopback address without an authentication plugin: "
        "anyone who reaches it can run commands on the cluster",
        kind=bool,
    )
    hostname: str = _flag(socket.gethostname(), "Hostname advertised to Mesos and other schedulers")
    # Scheduling
    task_launch_timeout: int = _flag(300000, "Time for a task to reach RUNNING (ms)", kind=int)
    task_launch_confirm_timeout: int = _flag(
        300000, "Time for a launched task to be confirmed as STAGING (ms)", kind=int
    )
    reconciliation_initial_delay: int = _flag(
        15000, "Delay before the first reconciliation (ms)", kind=int
    )
    reconciliation_interval: int = _flag(600000, "Interval of task reconciliation (ms)", kind=int)
    scale_apps_initial_delay: int = _flag(
        15000, "Delay before the first scale check (ms)", kind=int
    )
    scale_apps_interval: int = _flag(300000, "Interval of the periodic scale check (ms)", kind=int)
    min_revive_offers_interval: int = _flag(
        5000, "Minimum time between REVIVE calls (ms)", kind=int
    )
    decline_offer_duration: int = _flag(120000, "Refuse filter for unused offers (ms)", kind=int)
    max_instances_per_offer: int = _flag(5, "Most instances launched from one offer", kind=int)
    offer_matching_timeout: int = _flag(3000, "Time budget for matching one offer (ms)", kind=int)
    launch_tokens: int = _flag(100, "Launches allowed per token refresh interval", kind=int)
    launch_token_refresh_interval: int = _flag(
        30000, "Launch token refresh interval (ms)", kind=int
    )
    local_port_min: int = _flag(10000, "Lowest service port assigned to apps", kind=int)
    local_port_max: int = _flag(20000, "Highest service port assigned to apps", kind=int)
    max_running_deployments: int = _flag(100, "Most deployments running at once", kind=int)
    health_kill_tokens: int = _flag(
        10,
        "Tasks all apps together may have killed for failing health checks per "
        "--health_kill_token_refresh_interval (more are deferred)",
        kind=int,
    )
    health_kill_fraction_per_app: float = _flag(
        0.1,
        "Share of an app's instances it may have killed for failing health checks per "
        "--health_kill_token_refresh_interval, rounded up, at least 1 (more are deferred)",
        kind=float,
    )
    health_kill_token_refresh_interval: int = _flag(
        10000, "Interval over which health-check kill tokens come back (ms)", kind=int
    )
    max_concurrent_marathon_health_checks: int = _flag(
        256,
        "Leader-run (HTTP, HTTPS, TCP) health-check probes in flight at once, over all apps",
        kind=int,
    )
    executor: str = _flag("//cmd", "Default executor of apps")
    env_vars_prefix: str | None = _flag(None, "Prefix of the port and host variables of tasks")
    default_network_name: str | None = _flag(None, "Container network used when an app names none")
    mesos_bridge_name: str = _flag("mesos-bridge", "Name of the Mesos bridge network")
    enable_features: str = _flag(
        "", "Comma-separated features: vips, task_killing, external_volumes, secrets, gpu_resources"
    )
    max_apps: int | None = _flag(None, "Most apps that may exist", kind=int)
    # Events and lifecycle
    event_stream_max_outstanding_messages: int = _flag(
        1024, "Events a /v2/events client may leave unread before its lag counts", kind=int
    )
    graceful_shutdown_timeout: int = _flag(
        45000, "Time to finish requests on shutdown (ms)", kind=int
    )
    logging_level: str = _flag("info", "Log level: debug, info, warning, error")
    # Plugins
    disable_plugin: tuple[str, ...] = attrs.field(
        default=(),
        converter=tuple,
        metadata={"help": "Do not load the named plugin (repeatable)", "kind": list},
    )
    plugin_options: Mapping[str, Any] = attrs.field(factory=dict, metadata={"cli": False})

    @property
    def features(self) -> frozenset[str]:
        """The enabled optional features."""
        return frozenset(f.strip() for f in self.enable_features.split(",") if f.strip())

    def option(self, name: str) -> Any:
        """A plugin option's value by its flag name (``--my_flag`` -> ``"my_flag"``)."""
        return self.plugin_options[name.lstrip("-")]


def _env_name(dest: str) -> str:
    return ENV_PREFIX + dest.upper()


def _truthy(value: str) -> bool:
    """Marathon's boolean environment values: empty or true/yes/1 enable."""
    return value.strip().lower() in ("", "1", "true", "yes", "on")


class OptionParser:
    """The parser plugins add options to; wraps argparse and reads ``MARATHON_*``."""

    def __init__(self, *, prog: str = "marathon", environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._parser = _ArgumentParser(
            prog=prog,
            description="A Marathon for Apache Mesos. Every flag can also be given as an "
            "environment variable MARATHON_<FLAG> (e.g. MARATHON_HTTP_PORT=9090). "
            "'marathon plugins' lists the installed plugins.",
            allow_abbrev=False,
        )
        self._core_group = self._parser.add_argument_group("core options")
        self._plugin_dests: list[str] = []
        for field in attrs.fields(Config):
            if field.metadata.get("cli", True):
                self._add_core_flag(field)

    def _add_core_flag(self, field: attrs.Attribute[Any]) -> None:
        kind, help = field.metadata["kind"], field.metadata["help"]
        name = field.name
        if kind is bool:
            self._core_group.add_argument(
                f"--{name}", dest=name, action="store_true", default=field.default, help=help
            )
            if field.metadata.get("negatable"):
                self._core_group.add_argument(
                    f"--disable_{name}",
                    dest=name,
                    action="store_false",
                    help=f"Opposite of --{name}",
                )
        elif kind is list:
            self._core_group.add_argument(
                f"--{name}", dest=name, action="append", default=[], help=help
            )
        else:
            self._core_group.add_argument(
                f"--{name}",
                dest=name,
                type=kind,
                default=field.default,
                help=help,
                metavar=name.upper(),
            )

    def addoption(
        self,
        name: str,
        *,
        default: Any = None,
        help: str = "",
        type: Callable[[str], Any] = str,
        choices: Sequence[Any] | None = None,
        flag: bool = False,
    ) -> None:
        """Add a plugin option such as ``--my_flag``; ``flag=True`` makes it a boolean switch."""
        dest = name.lstrip("-")
        if not name.startswith("--") or not dest.replace("_", "").isalnum():
            raise ConfigError(f"option name {name!r} must look like --lower_snake_case")
        if flag:
            self._parser.add_argument(
                name, dest=dest, action="store_true", default=bool(default), help=help
            )
        else:
            self._parser.add_argument(
                name,
                dest=dest,
                type=type,
                default=default,
                help=help,
                choices=choices,
                metavar=dest.upper(),
            )
        self._plugin_dests.append(dest)

    def format_help(self) -> str:
        return self._parser.format_help()

    def parse(self, args: Sequence[str]) -> Config:
        """Parse ``args`` over the environment's ``MARATHON_*`` values; bad input -> ConfigError."""
        self._apply_environment()
        namespace = self._parser.parse_args(list(args))
        values = vars(namespace)
        plugin_options = {dest: values.pop(dest) for dest in self._plugin_dests}
        try:
            return Config(**values, plugin_options=plugin_options)
        except (TypeError, ValueError) as exc:  # pragma: no cover - argparse typed everything
            raise ConfigError(str(exc)) from None

    def _apply_environment(self) -> None:
        """Make ``MARATHON_<DEST>`` values the defaults, so the command line still wins."""
        defaults: dict[str, Any] = {}
        for action in self._parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            if isinstance(action, argparse._StoreFalseAction):
                raw = self._environ.get(_env_name("disable_" + action.dest))
                if raw is not None and _truthy(raw):
                    defaults[action.dest] = False
                continue
            raw = self._environ.get(_env_name(action.dest))
            if raw is None:
                continue
            if isinstance(action, argparse._StoreTrueAction):
                defaults.setdefault(action.dest, _truthy(raw))
            elif isinstance(action, argparse._AppendAction):
                defaults[action.dest] = [v.strip() for v in raw.split(",") if v.strip()]
            else:
                convert = action.type if callable(action.type) else str
                try:
                    defaults[action.dest] = convert(raw)
                except ValueError:
                    raise ConfigError(
                        f"environment variable {_env_name(action.dest)}={raw!r} is not a "
                        f"valid value for --{action.dest}"
                    ) from None
        self._parser.set_defaults(**defaults)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`ConfigError` instead of exiting on bad input."""

    def error(self, message: str) -> Any:
        raise ConfigError(message)


def parse_config(
    args: Sequence[str],
    *,
    addoption_hook: Callable[[OptionParser], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the configuration from ``args`` and the environment, with plugin options."""
    parser = OptionParser(environ=environ)
    if addoption_hook is not None:
        addoption_hook(parser)
    return parser.parse(args)
