"""The ``marathon`` command: run the server, or ``marathon plugins`` to list plugins.

Plugins are loaded before the command line is parsed, because they add options.
A broken plugin or a bad flag ends the command with one clear line per problem
(``marathon: error: ...``) and a non-zero exit status, before anything starts.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import trio

from marathon_core.config import Config, parse_config
from marathon_core.errors import ConfigError, PluginError, StorageError
from marathon_core.mesos.authentication import ignored_secret_file, mesos_credentials
from marathon_core.plugins import DISABLE_ENV, PluginHost, get_plugin_host
from marathon_core.redaction import install_log_redaction, redact, register_url_password
from marathon_core.service import serve

__all__ = ["main"]

#: Exit status for a bad flag or environment value, and for a broken plugin set.
EXIT_USAGE = 2
EXIT_PLUGIN = 3
#: The state store (ZooKeeper, SQLite) cannot be used; Marathon exits with 100 for ZooKeeper.
EXIT_STORAGE = 100


def _blocked_plugins(argv: Sequence[str]) -> list[str]:
    """Plugins disabled on the command line or in the environment, known before loading."""
    blocked = [p for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()]
    blocked += [p for p in os.environ.get("MARATHON_DISABLE_PLUGIN", "").split(",") if p.strip()]
    for i, arg in enumerate(argv):
        if arg == "--disable_plugin" and i + 1 < len(argv):
            blocked.append(argv[i + 1])
        elif arg.startswith("--disable_plugin="):
            blocked.append(arg.split("=", 1)[1])
    return [p.strip() for p in blocked]


def _error(message: str) -> None:
    for line in redact(message).splitlines():
        print(f"marathon: error: {line}", file=sys.stderr)


def format_plugins(host: PluginHost) -> str:
    """The table ``marathon plugins`` prints."""
    rows = [("NAME", "DISTRIBUTION", "VERSION", "HOOKS")]
    for info in host.plugins():
        distribution = info.distribution + (" (built-in)" if info.builtin else "")
        rows.append((info.name, distribution, info.version, ", ".join(info.hooks)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


def _configure_logging(config: Config) -> None:
    logging.basicConfig(
        level=config.logging_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_log_redaction()
    # One line per HTTP call to Mesos and agents drowns everything else.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.root.level))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``marathon`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    listing = args[:1] == ["plugins"]
    if listing:
        args = args[1:]
    try:
        host = get_plugin_host(blocked=_blocked_plugins(args))
    except PluginError as exc:
        _error(str(exc))
        return EXIT_PLUGIN
    if listing:
        if args:
            _error(f"'marathon plugins' takes no arguments, got: {' '.join(args)}")
            return EXIT_USAGE
        print(format_plugins(host))
        return 0
    try:
        config = parse_config(args, addoption_hook=host.addoption)
        host.configure(config)
        mesos_credentials(config)  # a bad secret file stops the start; the secret is masked
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    for url in (config.zk, config.master):
        register_url_password(url)
    _configure_logging(config)
    if (warning := ignored_secret_file(config)) is not None:
        logging.getLogger(__name__).warning("%s", warning)
    return _run(config, host)


def _run(config: Config, host: PluginHost) -> int:
    """Serve until stopped; configuration and plugin errors found while starting end it."""
    status = 0
    try:
        trio.run(serve, config, host)
    except* ConfigError as config_errors:
        for config_error in config_errors.exceptions:
            _error(str(config_error))
        status = EXIT_USAGE
    except* PluginError as plugin_errors:
        for plugin_error in plugin_errors.exceptions:
            _error(str(plugin_error))
        status = EXIT_PLUGIN
    except* StorageError as storage_errors:
        for storage_error in storage_errors.exceptions:
            _error(f"state store: {storage_error}")
        status = EXIT_STORAGE
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
