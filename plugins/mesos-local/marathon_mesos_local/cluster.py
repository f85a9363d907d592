"""A whole cluster on one machine: the master in this process, agents as child processes.

Agent ``i`` binds ``127.0.0.(2+i)``. Agents run in their own sessions (so that a test
can later pull one agent's "power cord" with ``killpg``), watch their parent, and are
stopped with SIGTERM, then SIGKILL, when the cluster stops. As a last line of defence
the cluster then kills any task process an agent left behind, found through the pid
files the agents keep under ``meta/pids`` (checked against the process's working
directory, so a recycled pid is never hit).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from marathon_mesos_local.master import Master, MasterOptions
from marathon_mesos_local.resources import DEFAULT_RESOURCES, Resources, parse_attributes

__all__ = ["Cluster", "ClusterOptions", "open_cluster", "reap_tasks"]

log = logging.getLogger(__name__)

#: How long agents get to register, and to stop after SIGTERM.
AGENT_START_TIMEOUT = 30.0
AGENT_STOP_TIMEOUT = 3.0


def _tuple(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen(kw_only=True)
class ClusterOptions:
    """Shape and timing of a local cluster.

    ``agent_resources`` and ``agent_attributes`` take Mesos's syntax; given several
    times, agent ``i`` gets entry ``i`` (the last entry repeats).
    """

    host: str = "127.0.0.1"
    port: int = 5050
    agents: int = 1
    agent_resources: tuple[str, ...] = attrs.field(default=(DEFAULT_RESOURCES,), converter=_tuple)
    agent_attributes: tuple[str, ...] = attrs.field(default=("",), converter=_tuple)
    first_agent_ip: str = "127.0.0.2"
    agent_port: int = 5051
    work_dir: Path | None = None
    heartbeat_interval: float = 15.0
    allocation_interval: float = 1.0
    agent_ping_timeout: float = 15.0
    status_update_retry: float = 10.0

    def check(self) -> None:
        """Raise ValueError for options that cannot work, before anything starts."""
        if self.agents < 0:
            raise ValueError("the number of agents cannot be negative")
        for text in self.agent_resources:
            Resources.parse(text)
        for text in self.agent_attributes:
            parse_attributes(text)

    def agent_ip(self, index: int) -> str:
        return str(ipaddress.IPv4Address(self.first_agent_ip) + index)


class Cluster:
    """A master and its agent processes; :meth:`run` them in a nursery."""

    def __init__(self, options: ClusterOptions) -> None:
        options.check()
        self.options = options
        self.master = Master(
            MasterOptions(
                host=options.host,
                port=options.port,
                heartbeat_interval=options.heartbeat_interval,
                allocation_interval=options.allocation_interval,
                agent_ping_timeout=options.agent_ping_timeout,
            )
        )
        self.agent_processes: list[trio.Process] = []
        self.work_dir: Path | None = options.work_dir

    @property
    def url(self) -> str:
        return self.master.url

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Start everything, report the master URL, run until cancelled, then stop it all."""
        own_dir = self.options.work_dir is None
        work_dir = Path(tempfile.mkdtemp(prefix="mesos-local-")) if own_dir else self.work_dir
        assert work_dir is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.master.run)
                for index in range(self.options.agents):
                    await self._start_agent(index)
                with trio.fail_after(AGENT_START_TIMEOUT):
                    await self.master.wait_agents(self.options.agents)
                log.info("mesos-local: master %s with %d agent(s)", self.url, self.options.agents)
                task_status.started(self.url)
        finally:
            with trio.CancelScope(shield=True):
                await self._stop_agents()
                reap_tasks(work_dir)
                if own_dir:
                    shutil.rmtree(work_dir, ignore_errors=True)

    def agent_work_dir(self, index: int) -> Path:
        assert self.work_dir is not None
        return self.work_dir / f"agent-{index}"

    async def _start_agent(self, index: int) -> trio.Process:
        options = self.options
        resources = options.agent_resources[min(index, len(options.agent_resources) - 1)]
        attributes = options.agent_attributes[min(index, len(options.agent_attributes) - 1)]
        argv = [
            sys.executable, "-m", "marathon_mesos_local.agent",
            "--master", self.url,
            "--ip", options.agent_ip(index),
            "--port", str(options.agent_port),
            "--work_dir", str(self.agent_work_dir(index)),
            "--resources", resources,
            "--attributes", attributes,
            "--status_update_retry", str(options.status_update_retry),
            "--parent_pid", str(os.getpid()),
        ]  # fmt: skip
        process = await trio.lowlevel.open_process(
            argv, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.agent_processes.append(process)
        return process

    async def _stop_agents(self) -> None:
        alive = [p for p in self.agent_processes if p.returncode is None]
        for process in alive:
            _signal(process.pid, signal.SIGTERM)
        with trio.move_on_after(AGENT_STOP_TIMEOUT):
            for process in alive:
                await process.wait()
        for process in alive:
            if process.returncode is None:
                log.warning("agent %s did not stop in time; killing it", process.pid)
                _signal(process.pid, signal.SIGKILL, group=True)
        with trio.move_on_after(1.0):
            for process in alive:
                await process.wait()


def _signal(pid: int, sig: int, *, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap_tasks(work_dir: Path) -> int:
    """SIGKILL task process groups that agents under ``work_dir`` left behind."""
    killed = 0
    for pid_file in work_dir.glob("agent-*/meta/pids/*"):
        try:
            pid_text, sandbox = pid_file.read_text().split("\n")[:2]
            pid = int(pid_text)
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except (OSError, ValueError):
            continue
        if os.path.realpath(cwd) == os.path.realpath(sandbox):
            _signal(pid, signal.SIGKILL, group=True)
            killed += 1
    if killed:
        log.warning("killed %d task(s) left behind by agents", killed)
    return killed


@asynccontextmanager
async def open_cluster(options: ClusterOptions) -> AsyncIterator[Cluster]:
    """Run a cluster for the duration of the block (tests, tools)."""
    cluster = Cluster(options)
    async with trio.open_nursery() as nursery:
        await nursery.start(cluster.run)
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()
