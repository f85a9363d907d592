"""Where the API listens, and with which TLS settings: safe unless told otherwise.

Without an authentication plugin anyone who reaches the API can run any command on
the cluster's agents (an app's ``cmd``), so the API then binds loopback only; another
address needs ``--insecure_bind_any`` and is announced with a warning. HTTPS comes
from a PEM certificate and key (``--https_port``, ``--ssl_cert``, ``--ssl_key``);
``--disable_http`` leaves HTTPS alone, and then answers carry HSTS.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl

import attrs

from marathon_core.config import Config
from marathon_core.errors import ConfigError

log = logging.getLogger(__name__)

#: The addresses only this machine's own processes can reach.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: What an unauthenticated API binds when no address is given.
DEFAULT_LOOPBACK = "127.0.0.1"
#: What an authenticated API binds when no address is given (Marathon's default).
DEFAULT_ANY = "0.0.0.0"


@attrs.frozen
class Endpoint:
    """One address and port to listen on; TLS when ``ssl_context`` is set."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"


def endpoints(config: Config, *, authenticates: bool) -> list[Endpoint]:
    """The endpoints ``config`` asks for; ConfigError for unsafe or incomplete settings."""
    default_host = DEFAULT_ANY if authenticates else DEFAULT_LOOPBACK
    http_host = config.http_address or default_host
    https_host = config.https_address or http_host
    result = []
    if config.disable_http and config.https_port is None:
        raise ConfigError("--disable_http needs --https_port (else nothing would be served)")
    if not config.disable_http:
        result.append(Endpoint(http_host, config.http_port))
    if config.https_port is not None:
        result.append(Endpoint(https_host, config.https_port, server_ssl_context(config)))
    elif config.ssl_cert or config.ssl_key:
        raise ConfigError("--ssl_cert and --ssl_key need --https_port")
    exposed = sorted({e.host for e in result if not is_loopback(e.host)})
    if exposed and not authenticates:
        if not config.insecure_bind_any:
            raise ConfigError(
                f"refusing to serve the API on {', '.join(exposed)} without authentication: "
                "anyone who reaches it could run commands on the cluster. Install and "
                "configure an authentication plugin (marathon-auth), bind 127.0.0.1, or "
                "accept the risk with --insecure_bind_any"
            )
        log.warning(
            "INSECURE: the API listens on %s without authentication (--insecure_bind_any): "
            "anyone who can reach it can start any command on the cluster's agents",
            ", ".join(exposed),
        )
    return result


def is_loopback(host: str) -> bool:
    """True for exactly 127.0.0.1, ::1 and localhost: other 127/8 addresses may be routed."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address("::1")
    except ValueError:
        return False


def server_ssl_context(config: Config) -> ssl.SSLContext:
    """The HTTPS server's context from the PEM files; a clear ConfigError when they are bad."""
    if not config.ssl_cert or not config.ssl_key:
        raise ConfigError("--https_port needs --ssl_cert and --ssl_key (PEM files)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(certfile=config.ssl_cert, keyfile=config.ssl_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load --ssl_cert {config.ssl_cert} / --ssl_key {config.ssl_key}: {exc}"
        ) from None
    return context


def leader_ssl_context(config: Config) -> ssl.SSLContext:
    """What a standby verifies the leader's certificate with (``--ssl_ca`` or the system's)."""
    try:
        return ssl.create_default_context(cafile=config.ssl_ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load --ssl_ca {config.ssl_ca}: {exc}") from None


def leader_scheme(config: Config) -> str:
    """The scheme of the leader's advertised port: all schedulers are configured alike."""
    return "https" if config.disable_http else "http"


def hsts(config: Config) -> bool:
    """Whether answers carry Strict-Transport-Security: only when nothing is plain HTTP."""
    return config.disable_http
