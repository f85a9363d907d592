"""The agent process: ``python -m marathon_mesos_local.agent --master URL --ip IP ...``.

It serves one :class:`~.server.Agent` with the containerizers of the installed
plugins, and stops it on SIGTERM/SIGINT or when its parent dies.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from marathon_core.contracts.containerizers import DEFAULT_CONTAINERIZERS, DEFAULT_DOCKER_SOCKET
from marathon_mesos_local.agent.containerizers import parse_containerizers, plugin_containerizers
from marathon_mesos_local.agent.model import STATUS_UPDATE_RETRY_MIN, AgentOptions
from marathon_mesos_local.agent.server import Agent
from marathon_mesos_local.resources import (
    DEFAULT_RESOURCES,
    ResourceError,
    Resources,
    parse_attributes,
)

__all__ = ["main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m marathon_mesos_local.agent")
    parser.add_argument("--master", required=True, help="Master URL, http://127.0.0.1:5050")
    parser.add_argument("--ip", required=True, help="Loopback address to bind, 127.0.0.2")
    parser.add_argument("--port", type=int, default=5051)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--resources", default=DEFAULT_RESOURCES)
    parser.add_argument("--attributes", default="")
    parser.add_argument("--status_update_retry", type=float, default=STATUS_UPDATE_RETRY_MIN)
    parser.add_argument("--parent_pid", type=int, default=None)
    parser.add_argument("--boot_id", default=None, help="Set by the host process")
    parser.add_argument(
        "--containerizers",
        default=",".join(sorted(DEFAULT_CONTAINERIZERS)),
        help="Mesos flag: enabled containerizers, comma-separated (mesos,docker)",
    )
    parser.add_argument(
        "--docker_socket", default=DEFAULT_DOCKER_SOCKET, help="Mesos flag: the Docker socket"
    )
    return parser


async def _serve(options: AgentOptions) -> None:
    agent = Agent(options, plugin_containerizers(options.settings()))
    async with trio.open_nursery() as nursery:

        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

        async def stop_with_parent() -> None:
            while options.parent_pid is not None:
                if os.getppid() != options.parent_pid:
                    log.warning("parent %s is gone; stopping", options.parent_pid)
                    nursery.cancel_scope.cancel()
                    return
                await trio.sleep(0.5)

        nursery.start_soon(stop_on_signal)
        nursery.start_soon(stop_with_parent)
        await agent.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("MESOS_LOCAL_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s %(levelname)s agent {args.ip}: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        options = AgentOptions(
            master=args.master.rstrip("/"),
            ip=args.ip,
            port=args.port,
            work_dir=Path(args.work_dir),
            resources=Resources.parse(args.resources),
            attributes=parse_attributes(args.attributes),
            status_update_retry=args.status_update_retry,
            parent_pid=args.parent_pid,
            boot_id=args.boot_id,
            containerizers=parse_containerizers(args.containerizers),
            docker_socket=args.docker_socket,
        )
    except (ResourceError, ValueError) as exc:
        print(f"agent: error: {exc}", file=sys.stderr)
        return 2
    trio.run(_serve, options)
    return 0
