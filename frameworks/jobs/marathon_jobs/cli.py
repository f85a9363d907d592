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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from marathon_core.errors import FencedWriteError, MarathonError, StorageUnavailableError
from marathon_core.framework import (
    LeaderElection,
    SoloElection,
    SqliteStorage,
    Storage,
    SubscriptionError,
    ZkElection,
    ZkStorage,
    detect_master,
    election_path,
    open_zk,
)
from marathon_core.plugins import get_plugin_host
from marathon_jobs.access import BasicCredentials, Guard, is_loopback, parse_credentials
from marathon_jobs.api import Node, create_app
from marathon_jobs.book import Book
from marathon_jobs.scheduler import JobScheduler, SchedulerSettings
from marathon_jobs.tasks import Placement

__all__ = ["bind_address", "main", "parse_args", "run", "step_down_on_loss"]

log = logging.getLogger("marathon_jobs")

#: Seconds a term that ended on a lost leadership waits before contending again.
STEP_DOWN_PAUSE = 1.0

MakeElection = Callable[[str], LeaderElection]


async def step_down_on_loss(term: Callable[[], Awaitable[None]]) -> None:
    """Run one leadership term; a lost leadership ends the term, not the process.

    Why: a leader that was paused past its ZooKeeper session (or whose Mesos
    subscription another instance took over) finds out on its next write (fenced) or
    from Mesos ("Framework failed over"). Returning lets the election step down; the
    process stays a standby that proxies the API and may lead again later. Any other
    refusal from Mesos (the framework was removed) still ends the process.
    """
    try:
        await term()
    except* (FencedWriteError, StorageUnavailableError) as failed:
        log.warning("leadership ends: the state store refused: %s", _first(failed))
    except* SubscriptionError as refused:
        other, _ = refused.split(_not_failed_over)
        if other is not None:
            raise other from None
        log.warning("leadership ends: %s (another instance leads)", _first(refused))
    await trio.sleep(STEP_DOWN_PAUSE)  # returning abdicates; do not contend in a tight loop


def _not_failed_over(exc: BaseException) -> bool:
    """For ``split``: a refusal other than a failover (groups are looked into)."""
    return not isinstance(exc, BaseExceptionGroup) and "failed over" not in str(exc).lower()


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception inside (nurseries nest the groups)."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def bind_address(flag: str | None, credentials: BasicCredentials | None) -> str:
    """Loopback unless credentials protect the API or an address was asked for; a
    non-loopback address without credentials is served, with a warning (anyone who
    reaches it can run commands on the agents through a job)."""
    address = flag or ("0.0.0.0" if credentials is not None else "127.0.0.1")
    if credentials is None and not is_loopback(address):
        log.warning(
            "serving the jobs API on %s without --http_credentials: anyone who reaches it "
            "can run any command on the agents",
            address,
        )
    return address


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
    add("--http_address", default=env("http_address", None),
        help="API address (default 127.0.0.1; 0.0.0.0 with --http_credentials)")  # fmt: skip
    add("--http_credentials", default=env("http_credentials", None),
        help="user:password that every API request must give (HTTP Basic)")  # fmt: skip
    add("--http_realm", default=env("http_realm", "Chronos"),
        help="The realm of the HTTP Basic challenge")  # fmt: skip
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
    args = parser.parse_args(argv)
    try:
        parse_credentials(args.http_credentials)
    except ValueError as exc:
        parser.error(str(exc))
    return args


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
    credentials = parse_credentials(args.http_credentials)
    address = bind_address(args.http_address, credentials)
    config = HypercornConfig()
    config.bind = [f"{address}:{args.http_port}"]
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
        app = Guard(create_app(node), credentials, realm=args.http_realm)
        binds: list[str] = await nursery.start(serve, app, config)
        port = int(binds[0].rsplit(":", 1)[1])
        election = node.election = make_election(f"{args.hostname}:{port}")
        settings_here = settings

        async def term() -> None:
            book = Book(storage, election.fence)
            await book.load()
            scheduler = JobScheduler(book, settings_here, placement, find_master=find_master)
            node.book, node.scheduler = book, scheduler
            try:
                await scheduler.run()
            finally:
                node.book = node.scheduler = None

        await nursery.start(election.run, step_down_on_loss, term)
        log.info("marathon-jobs API listening on http://%s:%d", address, port)
        task_status.started(f"http://{address}:{port}")


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
