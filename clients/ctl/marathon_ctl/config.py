"""Where the masters are and who we are: flags, then the environment, then the config file.

``~/.config/marathon-ctl/config.toml`` (or ``$XDG_CONFIG_HOME/marathon-ctl/config.toml``,
or ``$MARATHON_CTL_CONFIG``) may hold ``url`` (a string, comma separated, or a list),
``user`` (``name:password``) and ``token``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marathon_ctl.errors import CtlError

DEFAULT_URL = "http://localhost:8080"


@dataclass(frozen=True)
class Settings:
    #: Masters in the order they are tried; a standby proxies to the leader.
    urls: tuple[str, ...]
    user: str | None = None
    token: str | None = None


def config_path(environ: Mapping[str, str]) -> Path:
    if explicit := environ.get("MARATHON_CTL_CONFIG"):
        return Path(explicit)
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "marathon-ctl" / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CtlError(f"{path}: {exc}") from None


def split_urls(values: Sequence[str] | str) -> tuple[str, ...]:
    """Masters from repeated and comma-separated values; ``host:port`` gets ``http://``."""
    items = [values] if isinstance(values, str) else list(values)
    urls = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip().rstrip("/")
            if part:
                urls.append(part if "://" in part else f"http://{part}")
    return tuple(urls)


def resolve(
    *,
    urls: Sequence[str],
    user: str | None,
    token: str | None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings from flags, else ``MARATHON_URL``/``MARATHON_USER``/``MARATHON_TOKEN``,
    else the config file, else ``http://localhost:8080`` without credentials."""
    env = os.environ if environ is None else environ
    file = read_config_file(config_path(env))
    chosen_urls = (
        split_urls(urls)
        or split_urls(env.get("MARATHON_URL", ""))
        or split_urls(file.get("url", []))
        or (DEFAULT_URL,)
    )
    chosen_user = user or env.get("MARATHON_USER") or file.get("user")
    chosen_token = token or env.get("MARATHON_TOKEN") or file.get("token")
    if chosen_user is not None and ":" not in str(chosen_user):
        raise CtlError("--user takes user:password")
    return Settings(
        urls=chosen_urls,
        user=None if chosen_user is None else str(chosen_user),
        token=None if chosen_token is None else str(chosen_token),
    )
