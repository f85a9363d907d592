"""``marathon-mesos-local``: a Mesos master and agents on this machine, until SIGINT/SIGTERM.

``--agents 0`` runs a master alone and ``--master URL`` runs agents alone, against that
master: two processes, so that the master can be killed and started again on the same
port and ``--work_dir`` (a failover) while the agents and their tasks keep running.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from marathon_core.contracts.containerizers import DEFAULT_CONTAINERIZERS, DEFAULT_DOCKER_SOCKET
from marathon_mesos_local.cluster import Cluster, ClusterOptions
from marathon_mesos_local.master.credentials import REALM, CredentialsError, read_credentials
from marathon_mesos_local.master.registry import RegistryError
from marathon_mesos_local.resources import DEFAULT_RESOURCES, ResourceError

__all__ = ["framework_credentials", "main", "parse_duration"]

_UNITS = {
    "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0,
    "days": 86400.0, "weeks": 604800.0,
}  # fmt: skip
_DURATION = re.compile(r"^\s*([0-9.]+)\s*([a-z]*)\s*$")


def parse_duration(text: str) -> float:
    """Mesos's duration syntax (``15secs``, ``10mins``, ``500ms``) in seconds; bare = secs."""
    match = _DURATION.match(text)
    if not match or (match.group(2) and match.group(2) not in _UNITS):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 15secs, 500ms)")
    return float(match.group(1)) * _UNITS.get(match.group(2) or "secs", 1.0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marathon-mesos-local",
        description="Run an embedded Mesos master (v1 HTTP API) and agents on loopback "
        "addresses until SIGINT/SIGTERM.",
    )
    parser.add_argument("--ip", default="127.0.0.1", help="Master address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5050, help="Master port (default 5050)")
    parser.add_argument(
        "--master",
        metavar="URL",
        help="Run no master: the agents register with the master at URL "
        "(another marathon-mesos-local, e.g. one run with --agents 0)",
    )
    parser.add_argument(
        "--agents", type=int, default=1, help="Number of agent processes (0: a master alone)"
    )
    parser.add_argument(
        "--agent-resources",
        action="append",
        help=f"Agent resources in Mesos's syntax (default {DEFAULT_RESOURCES!r}); "
        "repeat to give agent i the i-th value",
    )
    parser.add_argument(
        "--agent-attributes",
        action="append",
        help="Agent attributes in Mesos's syntax (rack:r1;zone:a); repeatable like resources",
    )
    parser.add_argument("--first-agent-ip", default="127.0.0.2", help="Address of agent 0")
    parser.add_argument("--agent-port", type=int, default=5051, help="Port of every agent")
    parser.add_argument(
        "--work_dir",
        type=Path,
        help="The master's registry goes to DIR/master, agent i's checkpoints and sandboxes "
        "to DIR/agent-i; a master restarted on the same DIR recovers its agents "
        "(default: a temp dir, removed at exit)",
    )
    parser.add_argument(
        "--allocation_interval", type=parse_duration, default=1.0, help="Mesos flag (1secs)"
    )
    parser.add_argument(
        "--agent_ping_timeout",
        type=parse_duration,
        default=15.0,
        help="Mesos flag: ping interval and timeout of each ping (15secs)",
    )
    parser.add_argument(
        "--max_agent_ping_timeouts",
        type=int,
        default=5,
        help="Mesos flag: missed pings before an agent is unreachable (5)",
    )
    parser.add_argument(
        "--offer_timeout",
        type=parse_duration,
        default=None,
        help="Mesos flag: rescind offers not used for this long (default: never)",
    )
    parser.add_argument(
        "--agent_reregister_timeout",
        type=parse_duration,
        default=600.0,
        help="Mesos flag: how long a master restarted on its work dir waits for the "
        "agents of its registry to re-register before it marks them unreachable (10mins)",
    )
    parser.add_argument(
        "--simulated-agents",
        type=int,
        default=0,
        help="In-process simulated agents (no processes; tasks only pretend to run)",
    )
    parser.add_argument(
        "--simulated_task_step",
        type=parse_duration,
        default=0.05,
        help="Time from a simulated task's STAGING to STARTING, and on to RUNNING (50ms)",
    )
    parser.add_argument(
        "--containerizers",
        default=",".join(sorted(DEFAULT_CONTAINERIZERS)),
        help="Mesos flag of every agent: the enabled containerizers, comma-separated "
        "(mesos, docker; default mesos). Plain command tasks always run",
    )
    parser.add_argument(
        "--docker_socket",
        default=DEFAULT_DOCKER_SOCKET,
        help=f"Mesos flag: the Docker Engine socket of the docker containerizer "
        f"({DEFAULT_DOCKER_SOCKET})",
    )
    parser.add_argument(
        "--authenticate_http_frameworks",
        "--authenticate_frameworks",
        dest="authenticate_frameworks",
        action="store_true",
        help="Mesos flag: scheduler calls must carry HTTP Basic credentials listed in "
        "--credentials (realm mesos-master-scheduler)",
    )
    parser.add_argument(
        "--credentials",
        metavar="FILE",
        help="Mesos flag: the credentials file, JSON "
        '({"credentials": [{"principal": "p", "secret": "s"}]}) or "principal secret" lines',
    )
    parser.add_argument("--log_level", default="INFO")
    return parser


def framework_credentials(authenticate: bool, path: str | None) -> dict[str, str] | None:
    """The credentials frameworks authenticate with, None when they need not.

    Raises CredentialsError as Mesos refuses to start: authentication without a
    credentials file, or a file it cannot use.
    """
    if not authenticate:
        return None
    if path is None:
        raise CredentialsError(
            f"No credentials provided for the default 'basic' HTTP authenticator for "
            f"realm '{REALM}'"
        )
    return read_credentials(path)


async def _run(cluster: Cluster) -> None:
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            url = await nursery.start(cluster.run)
            options = cluster.options
            if options.master_url is not None:
                what = f"{options.agents} agent(s) of master {url}"
            else:
                what = f"master {url} with {options.agents} agent(s)"
                if options.simulated_agents:
                    what += f" and {options.simulated_agents} simulated agent(s)"
            print(f"marathon-mesos-local: {what}; Ctrl-C stops it", file=sys.stderr, flush=True)
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()


def _leaf(error: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        credentials = framework_credentials(args.authenticate_frameworks, args.credentials)
        options = ClusterOptions(
            host=args.ip,
            port=args.port,
            agents=args.agents,
            agent_resources=args.agent_resources or (DEFAULT_RESOURCES,),
            agent_attributes=args.agent_attributes or ("",),
            first_agent_ip=args.first_agent_ip,
            agent_port=args.agent_port,
            work_dir=args.work_dir,
            master_url=args.master.rstrip("/") if args.master else None,
            allocation_interval=args.allocation_interval,
            agent_ping_timeout=args.agent_ping_timeout,
            max_agent_ping_timeouts=args.max_agent_ping_timeouts,
            offer_timeout=args.offer_timeout,
            agent_reregister_timeout=args.agent_reregister_timeout,
            simulated_agents=args.simulated_agents,
            simulated_task_step=args.simulated_task_step,
            containerizers=args.containerizers,
            docker_socket=args.docker_socket,
            framework_credentials=credentials,
        )
        cluster = Cluster(options)
    except (ResourceError, ValueError) as exc:
        print(f"marathon-mesos-local: error: {exc}", file=sys.stderr)
        return 2
    except RegistryError as exc:
        print(f"marathon-mesos-local: error: {exc}; not starting without its agents",
              file=sys.stderr)  # fmt: skip
        return 1
    failure: BaseException | None = None
    try:
        trio.run(_run, cluster)
    except* OSError as group:  # a port in use, for example
        failure = _leaf(group)
    if failure is not None:
        print(f"marathon-mesos-local: error: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
