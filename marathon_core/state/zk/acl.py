"""Lock an existing ``--zk`` tree to Marathon's digest identity: the migration from open ACLs.

``marathon`` given ``zk://user:password@hosts/path`` creates every znode with an ACL that
gives only ``digest:user`` any permission; nodes made before (with ``world:anyone``) keep
their open ACL.  This command sets the digest ACL on ``path`` and every node below it::

    python -m marathon_core.state.zk.acl zk://marathon:s3cret@zk1:2181,zk2:2181/marathon

Run it after every scheduler was restarted with the credentials in its ``--zk`` (an
authenticated client still reads open nodes, so the service keeps running throughout);
nodes created meanwhile already carry the digest ACL.  Parents of ``path`` are left as
they are: they may be shared with other services.  The password may also come from the
environment (``MARATHON_ZK_PASSWORD``) so it stays out of the process list.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from kazoo import exceptions as ke
from kazoo.client import KazooClient

from marathon_core.errors import ConfigError
from marathon_core.state.zk.client import digest_acl
from marathon_core.state.zk.url import ZkUrl, parse_zk_url

__all__ = ["PASSWORD_ENV", "lock_tree", "main"]

#: Where the password may come from instead of the URL.
PASSWORD_ENV = "MARATHON_ZK_PASSWORD"

#: Requests in flight at once while walking the tree.
_BATCH = 256


def lock_tree(client: Any, root: str, acl: list[Any], *, timeout: float = 30.0) -> int:
    """Set ``acl`` on ``root`` and every node below it; the number of nodes set.

    ``client`` is a started, authenticated kazoo client.  Requests are pipelined a
    level at a time; a node deleted meanwhile is skipped.
    """
    done = 0
    level = [root]
    while level:
        below: list[str] = []
        for start in range(0, len(level), _BATCH):
            batch = level[start : start + _BATCH]
            # Children first, then the ACL: listing needs READ, which we may lose.
            listings = [client.get_children_async(p) for p in batch]
            updates = [client.set_acls_async(p, acl) for p in batch]
            for path, listing, update in zip(batch, listings, updates, strict=True):
                try:
                    children = listing.get(timeout=timeout)
                    update.get(timeout=timeout)
                except ke.NoNodeError:
                    continue
                done += 1
                prefix = path.rstrip("/")
                below.extend(f"{prefix}/{c}" for c in children)
        level = below
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m marathon_core.state.zk.acl",
        description="Give only the --zk URL's digest identity access to Marathon's znodes.",
    )
    parser.add_argument("zk", help="the --zk URL, zk://user:password@hosts/path")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args(argv)
    try:
        url = parse_zk_url(args.zk)
    except ConfigError as exc:
        parser.error(str(exc))
    if url.username is None:
        parser.error("the URL names no user: zk://user:password@hosts/path")
    password = os.environ.get(PASSWORD_ENV) or url.password
    url = ZkUrl(url.hosts, url.path, url.username, password)
    client = KazooClient(
        hosts=url.hosts, timeout=args.timeout, auth_data=[("digest", f"{url.username}:{password}")]
    )
    try:
        client.start(timeout=args.timeout)
    except Exception as exc:
        print(f"cannot connect to ZooKeeper at {url}: {type(exc).__name__}", file=sys.stderr)
        return 1
    try:
        count = lock_tree(client, url.path, digest_acl(url), timeout=args.timeout)
    except ke.NoAuthError:
        print(
            f"not allowed to change the ACLs below {url.path}: "
            "the nodes are already locked to another identity",
            file=sys.stderr,
        )
        return 1
    finally:
        client.stop()
        client.close()
    print(f"{count} znodes at and below {url.path} now allow only digest:{url.username}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
