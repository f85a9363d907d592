"""Finding the leading Mesos master from ``--master``.

``http://host:5050`` and ``host:5050`` name a master directly (a non-leader answers
307 and the client follows). ``zk://h1:2181,h2:2181/mesos`` names the ZooKeeper
group the masters contend in: each master holds an ephemeral sequential node
``json.info_<seq>`` with its MasterInfo as JSON, and the lowest sequence leads.
kazoo is blocking, so it runs in a worker thread (``trio.to_thread``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import trio

from marathon_core.errors import ConfigError, MarathonError

__all__ = [
    "MasterNotFoundError",
    "detect_master",
    "leader_child",
    "master_info_url",
    "master_url_of",
    "parse_zk_url",
]

_INFO_CHILD = re.compile(r"^json\.info_(\d+)$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")


def master_url_of(value: str) -> str | None:
    """``http(s)://host:port`` or ``host:port`` as a URL; None for other forms."""
    if value.startswith(("http://", "https://")):
        return value.rstrip("/")
    if _HOST_PORT.match(value):
        return f"http://{value}"
    return None


def parse_zk_url(url: str) -> tuple[str, str]:
    """``zk://[user:pass@]hosts/path`` -> (hosts, path); ConfigError otherwise."""
    if not url.startswith("zk://"):
        raise ConfigError(f"not a zk:// URL: {url!r}")
    rest = url[len("zk://") :]
    hosts, slash, path = rest.partition("/")
    if "@" in hosts:
        hosts = hosts.rsplit("@", 1)[1]
    if not hosts or not slash or not path:
        raise ConfigError(f"--master {url}: expected zk://host:port[,host:port]/path")
    return hosts, "/" + path.rstrip("/")


def leader_child(children: Iterable[str]) -> str | None:
    """The ``json.info_<seq>`` child with the lowest sequence number (the leader)."""
    best: tuple[int, str] | None = None
    for child in children:
        m = _INFO_CHILD.match(child)
        if m is not None and (best is None or int(m.group(1)) < best[0]):
            best = (int(m.group(1)), child)
    return None if best is None else best[1]


def master_info_url(info: Mapping[str, Any]) -> str:
    """``http://host:port`` of a MasterInfo (``address`` preferred over the old fields)."""
    address = info.get("address") or {}
    host = address.get("hostname") or address.get("ip") or info.get("hostname")
    port = address.get("port") or info.get("port")
    if not host or not port:
        raise ValueError(f"MasterInfo without an address: {dict(info)!r}")
    return f"http://{host}:{port}"


def _zk_leader(hosts: str, path: str, timeout: float) -> str | None:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError

    zk = KazooClient(hosts=hosts, timeout=timeout, read_only=True)
    zk.start(timeout=timeout)
    try:
        try:
            children = zk.get_children(path)
        except NoNodeError:  # no master has registered under this path yet
            return None
        child = leader_child(children)
        if child is None:
            return None
        data, _ = zk.get(f"{path}/{child}")
        return master_info_url(json.loads(data))
    finally:
        zk.stop()
        zk.close()


class MasterNotFoundError(MarathonError):
    """No leading Mesos master could be found (yet) in the masters' ZooKeeper group."""


async def detect_master(value: str, *, timeout: float = 10.0) -> str:
    """The URL of the (leading) master named by ``value``.

    ConfigError if ``value`` names no master; MasterNotFoundError if the ZooKeeper
    group shows no leader within ``2 * timeout`` seconds (unreachable, or no master
    elected), so that the caller can try again later.
    """
    direct = master_url_of(value)
    if direct is not None:
        return direct
    if value.startswith("zk://"):
        hosts, path = parse_zk_url(value)
        why = "no master is elected"
        with trio.move_on_after(timeout * 2):
            while True:
                try:
                    url = await trio.to_thread.run_sync(
                        _zk_leader, hosts, path, timeout, abandon_on_cancel=True
                    )
                except Exception as exc:  # kazoo's errors, or a MasterInfo we cannot read
                    why = f"{type(exc).__name__}: {exc}"
                else:
                    if url is not None:
                        return url
                await trio.sleep(0.5)
        raise MasterNotFoundError(f"no leading Mesos master in {value}: {why}")
    raise ConfigError(f"--master {value!r}: expected http://host:port, host:port or zk://.../mesos")
