"""Hook implementations of marathon-auth.

The plugin stays out of the way (answers None) until ``--http_credentials`` or
``--auth_users`` is given, as Marathon serves without authentication unless
``--http_credentials`` is set; once either is, every request needs credentials and
everything no rule allows is denied.
"""

from __future__ import annotations

from pathlib import Path

from marathon_auth.authenticator import Authenticator
from marathon_auth.directory import Directory, build_directory
from marathon_auth.limiter import FailureLimiter
from marathon_core import hookimpl
from marathon_core.config import Config, OptionParser
from marathon_core.contracts.auth import Action, HttpRequest, Identity, Resource
from marathon_core.errors import ConfigError
from marathon_core.hookspecs import HookEnabler

#: The plugin's name (its entry point); its request hooks are enabled under it.
PLUGIN_NAME = "auth"


class RequestHooks:
    """The authentication and authorization hooks, registered only once configured.

    Installed but not configured, the plugin must not count as an authenticator:
    the REST server binds beyond loopback only when one is present.
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    @hookimpl
    def marathon_authenticate(self, request: HttpRequest) -> Identity | None:
        return self.authenticator.authenticate(request)

    @hookimpl
    def marathon_authorize(
        self, identity: Identity, action: Action, resource: Resource
    ) -> bool | None:
        return identity.authenticated and self.authenticator.directory.may(
            identity.name, action, resource
        )


@hookimpl
def marathon_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--http_credentials",
        help="user:password of a Basic-auth user who may do everything (Marathon's flag)",
    )
    parser.addoption(
        "--http_realm", default="Mesosphere", help="The realm of the Basic-auth challenge"
    )
    parser.addoption(
        "--auth_users",
        type=Path,
        help="TOML file of users (scrypt password hashes, groups, hashed bearer tokens) "
        "and authorization rules; see marathon-auth's README",
    )
    parser.addoption(
        "--auth_max_failures",
        type=int,
        default=5,
        help="Failed logins per client address within --auth_failure_window before "
        "it gets 429 with Retry-After",
    )
    parser.addoption(
        "--auth_failure_window",
        type=float,
        default=60.0,
        help="Seconds over which --auth_max_failures counts",
    )


@hookimpl
def marathon_configure(config: Config, plugins: HookEnabler) -> None:
    directory: Directory | None = build_directory(
        config.option("auth_users"), config.option("http_credentials")
    )
    if directory is None:
        return
    max_failures, window = config.option("auth_max_failures"), config.option("auth_failure_window")
    if max_failures < 1 or window <= 0:
        raise ConfigError("--auth_max_failures and --auth_failure_window must be positive")
    limiter = FailureLimiter(max_failures, window)
    authenticator = Authenticator(directory, config.option("http_realm"), limiter)
    plugins.enable(PLUGIN_NAME, RequestHooks(authenticator))
