"""``--zk`` URLs: ``zk://[user:pass@]host:port[,host:port...]/path``."""

from __future__ import annotations

from urllib.parse import unquote

import attrs

from marathon_core.errors import ConfigError

__all__ = ["DEFAULT_PORT", "ZkUrl", "parse_zk_url"]

#: Port of a ``--zk`` host given without one.
DEFAULT_PORT = 2181


@attrs.frozen
class ZkUrl:
    """A parsed ``zk://[user:pass@]host:port[,host:port...]/path``."""

    hosts: str
    path: str
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        auth = f"{self.username}:***@" if self.username is not None else ""
        return f"zk://{auth}{self.hosts}{self.path}"


def parse_zk_url(url: str) -> ZkUrl:
    """Parse ``--zk``; :class:`ConfigError` with the reason when it is malformed."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"--zk {url!r}: {why}; expected zk://host:port[,host:port...]/path")

    if not url.startswith("zk://"):
        raise bad("the scheme must be zk://")
    rest = url[len("zk://") :]
    slash = rest.find("/")
    if slash < 0:
        raise bad("the path is missing")
    authority, path = rest[:slash], rest[slash:]
    username = password = None
    if "@" in authority:
        cred, authority = authority.rsplit("@", 1)
        if ":" not in cred:
            raise bad("credentials must be user:password")
        username, password = (unquote(p) for p in cred.split(":", 1))
    if not authority:
        raise bad("no host given")
    hosts = []
    for hp in authority.split(","):
        host, sep, port = hp.rpartition(":")
        if not sep and hp and "[" not in hp:
            host, port = hp, str(DEFAULT_PORT)  # ZooKeeper's client port, as its clients assume
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise bad(f"{hp!r} is not host:port")
        hosts.append(f"{host}:{int(port)}")
    path = path.rstrip("/")
    if not path:
        raise bad("the path must not be /")
    for seg in path[1:].split("/"):
        if seg in ("", ".", "..") or "\x00" in seg:
            raise bad(f"bad path segment {seg!r}")
    return ZkUrl(",".join(hosts), path, username, password)
