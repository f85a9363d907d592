"""``marathon-jobs``: the job scheduler's process, with Chronos's flag names.

Every instance serves the API; the one elected leader (ZooKeeper under ``--zk_path``
when ``--zk_hosts`` is given, else this process alone with SQLite in ``--state_dir``)
subscribes to Mesos and starts the runs. Each flag is also read from the environment
as ``MARATHON_JOBS_<FLAG>`` (e.g. ``MARATHON_JOBS_HTTP_PORT``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from marathon_core.errors import MarathonError
from marathon_core.framework import (
    LeaderElection,
    SoloElection,
    SqliteStorage,
    Storage,
    ZkElection,
    ZkStorage,
    detect_master,
    election_path,
    open_zk,
)
from marathon_core.plugins import get_plugin_host
from marathon_jobs.api import Node, create_app
from marathon_jobs.book import Book
from marathon_jobs.scheduler import JobScheduler, SchedulerSettings
from marathon_jobs.tasks import Placement

__all__ = ["main", "parse_args", "run"]

log = logging.getLogger("marathon_jobs")

MakeElection = Callable[[str], LeaderElection]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    def env(flag: str, default: str | None) -> str | None:
        return os.environ.get(f"MARATHON_JOBS_{flag.upper()}", default)

    parser = argparse.ArgumentParser(prog="marathon-jobs", description=__doc__)
    add = parser.add_argument
    add("--master", default=env("master", "127.0.0.1:5050"),
        help="Mesos master: http://host:port, host:port or zk://host:2181/mesos")  # fmt: skip
    add("--zk_hosts", default=env("zk_hosts", None),
        help="ZooKeeper host:port[,host:port...] for state and leader election")  # fmt: skip
    add("--zk_path", default=env("zk_path", "/chronos/state"), help="ZooKeeper path")
    add("--zk_timeout", type=int, default=int(env("zk_timeout", "10000") or 0),
        help="ZooKeeper session timeout (ms)")  # fmt: skip
    add("--state_dir", default=env("state_dir", "marathon-jobs-state"),
        help="Without --zk_hosts: the directory of the SQLite state")  # fmt: skip
    add("--http_port", type=int, default=int(env("http_port", "8080") or 0))
    add("--http_address", default=env("http_address", "127.0.0.1"),
        help="Address the API listens on")  # fmt: skip
    add("--hostname", default=env("hostname", socket.gethostname()),
        help="How Mesos and the other instances reach this one")  # fmt: skip
    add("--mesos_framework_name", default=env("mesos_framework_name", "chronos"))
    add("--mesos_role", default=env("mesos_role", "*"))
    add("--mesos_user", default=env("mesos_user", getpass.getuser()),
        help="User of the tasks whose job names no runAsUser")  # fmt: skip
    add("--failover_timeout", type=float, default=float(env("failover_timeout", "604800") or 0),
        help="Seconds Mesos keeps the tasks while no leader is subscribed")  # fmt: skip
    add("--task_epsilon", type=int, default=int(env("task_epsilon", "60") or 0),
        help="Default epsilon (s): how late a run may still start; later it is missed")  # fmt: skip
    add("--mesos_heartbeat_interval", type=float, default=15.0, help=argparse.SUPPRESS)
    add("--log_level", default=env("log_level", "INFO"))
    return parser.parse_args(argv)


@asynccontextmanager
async def open_backend(args: argparse.Namespace) -> AsyncIterator[tuple[Storage, MakeElection]]:
    """The storage and a maker of the election (its id is the API's address, known later)."""
    if args.zk_hosts:
        url = f"zk://{args.zk_hosts}{args.zk_path}"
        seconds = args.zk_timeout / 1000
        async with open_zk(url, session_timeout=seconds, timeout=seconds) as zk:
            zk_storage = await ZkStorage.open(zk)
            yield zk_storage, lambda me: ZkElection(zk, me, path=election_path(args.zk_path))
        return
    directory = Path(args.state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    storage = await SqliteStorage.open(directory / "marathon-jobs.sqlite3")
    try:
        yield storage, SoloElection
    finally:
        with trio.CancelScope(shield=True):
            await storage.aclose()


async def run(
    args: argparse.Namespace, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; ``task_status`` gets the API's URL."""
    host = get_plugin_host()
    placement = Placement(
        operators=host.constraint_operators(),
        runtimes=host.container_runtimes(),
        role=args.mesos_role,
    )
    node = Node(placement=placement, default_epsilon=f"PT{args.task_epsilon}S")
    config = HypercornConfig()
    config.bind = [f"{args.http_address}:{args.http_port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    settings = SchedulerSettings(
        master=args.master,
        framework_name=args.mesos_framework_name,
        user=args.mesos_user,
        role=args.mesos_role,
        hostname=args.hostname,
        failover_timeout=args.failover_timeout,
        heartbeat_interval=args.mesos_heartbeat_interval,
    )

    async def find_master() -> str:
        return await detect_master(args.master)

    async with (
        node.proxy,
        open_backend(args) as (storage, make_election),
        trio.open_nursery() as nursery,
    ):
        binds: list[str] = await nursery.start(serve, create_app(node), config)
        port = int(binds[0].rsplit(":", 1)[1])
        election = node.election = make_election(f"{args.hostname}:{port}")
        settings_here = settings

        async def lead() -> None:
            book = Book(storage, election.fence)
            await book.load()
            scheduler = JobScheduler(book, settings_here, placement, find_master=find_master)
            node.book, node.scheduler = book, scheduler
            try:
                await scheduler.run()
            finally:
                node.book = node.scheduler = None

        await nursery.start(election.run, lead)
        log.info("marathon-jobs API listening on http://%s:%d", args.http_address, port)
        task_status.started(f"http://{args.http_address}:{port}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        trio.run(run, args)
    except KeyboardInterrupt:
        pass
    except MarathonError as exc:
        print(f"marathon-jobs: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
