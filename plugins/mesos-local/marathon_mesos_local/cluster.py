"""A whole cluster on one machine: the master in this process, agents as child processes.

Either part may run alone: ``agents=0`` is a master only; ``master_url`` runs only the
agents, against a master elsewhere (another ``marathon-mesos-local``). Running the two
apart is what lets the master fail over -- be killed and started again on the same
port and work dir -- while the agents and their tasks keep running.

Agent ``i`` binds ``127.0.0.(2+i)`` and runs on its own "machine": a host process (see
:mod:`.host`) in a session of its own whose process group holds the agent and all its
tasks. :meth:`Cluster.power_off` SIGKILLs that group (the power cord);
:meth:`Cluster.restart_agent` kills only the agent process, which the host restarts
and which then recovers its tasks; :meth:`Cluster.pause_agent` /
:meth:`Cluster.resume_agent` SIGSTOP/SIGCONT the agent (a partition and its end).

Hosts watch their parent and are stopped with SIGTERM (the agent stops its tasks and
unregisters), then SIGKILL of the whole group, when the cluster stops; the master
stops after them, so that it hears them leave. As a last line of defence the cluster
then kills any task process left with a sandbox under the work dir (task processes
carry ``MESOS_LOCAL_CONTAINER`` and ``MESOS_SANDBOX`` in their environment).

The master keeps its registry in ``<work_dir>/master`` when a work dir is given (in
memory otherwise: a temporary work dir dies with the cluster anyway).
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
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from marathon_core.contracts.containerizers import DEFAULT_CONTAINERIZERS, DEFAULT_DOCKER_SOCKET
from marathon_core.task_process import CONTAINER_MARKER
from marathon_mesos_local.agent.containerizers import parse_containerizers
from marathon_mesos_local.master.credentials import REALM, FrameworkAuthenticator
from marathon_mesos_local.master.model import MasterOptions
from marathon_mesos_local.master.server import Master
from marathon_mesos_local.resources import DEFAULT_RESOURCES, Resources, parse_attributes
from marathon_mesos_local.simulated import SimulatedAgents

__all__ = ["Cluster", "ClusterOptions", "group_members", "open_cluster", "reap_tasks"]

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
    #: Run no master here: the agents register with the master at this URL.
    master_url: str | None = None
    heartbeat_interval: float = 15.0
    allocation_interval: float = 1.0
    #: Mesos's master flags ``--agent_ping_timeout``, ``--max_agent_ping_timeouts``,
    #: ``--offer_timeout`` (None: offers never time out), ``--agent_reregister_timeout``.
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    offer_timeout: float | None = None
    agent_reregister_timeout: float = 600.0
    status_update_retry: float = 10.0
    #: In-process simulated agents (see :mod:`.simulated`), after the real ones; they
    #: get the first ``agent_resources`` and ``agent_attributes`` entries.
    simulated_agents: int = 0
    #: Time between a simulated task's STAGING, STARTING and RUNNING.
    simulated_task_step: float = 0.05
    #: The agents' Mesos flags ``--containerizers`` (``mesos,docker``) and
    #: ``--docker_socket``.
    containerizers: str = ",".join(sorted(DEFAULT_CONTAINERIZERS))
    docker_socket: str = DEFAULT_DOCKER_SOCKET
    #: The master's ``--authenticate_http_frameworks`` with these ``--credentials``
    #: (principal -> secret); None: frameworks need not authenticate.
    framework_credentials: Mapping[str, str] | None = attrs.field(default=None, repr=False)

    def check(self) -> None:
        """Raise ValueError for options that cannot work, before anything starts."""
        if self.agents < 0 or self.simulated_agents < 0:
            raise ValueError("the number of agents cannot be negative")
        if self.master_url is not None and self.simulated_agents:
            raise ValueError("simulated agents live in the master's process, not beside it")
        if self.agent_ping_timeout <= 0:
            raise ValueError("agent_ping_timeout must be positive")
        if self.max_agent_ping_timeouts < 1:
            raise ValueError("max_agent_ping_timeouts must be at least 1")
        if self.offer_timeout is not None and self.offer_timeout <= 0:
            raise ValueError("offer_timeout must be positive")
        if self.agent_reregister_timeout < 0:
            raise ValueError("agent_reregister_timeout cannot be negative")
        if self.framework_credentials is not None and not self.framework_credentials:
            raise ValueError(
                "No credentials provided for the default 'basic' HTTP authenticator for "
                f"realm '{REALM}'"
            )
        parse_containerizers(self.containerizers)
        for text in self.agent_resources:
            Resources.parse(text)
        for text in self.agent_attributes:
            parse_attributes(text)

    def agent_ip(self, index: int) -> str:
        return str(ipaddress.IPv4Address(self.first_agent_ip) + index)

    @property
    def master_dir(self) -> Path | None:
        """The master's work dir, where its registry lives (None: in memory only)."""
        return None if self.work_dir is None else self.work_dir / "master"


class Cluster:
    """A master and its agent processes; :meth:`run` them in a nursery.

    Raises RegistryError when the master's registry cannot be used.
    """

    def __init__(self, options: ClusterOptions) -> None:
        options.check()
        self.options = options
        self._master = (
            Master(
                MasterOptions(
                    host=options.host,
                    port=options.port,
                    heartbeat_interval=options.heartbeat_interval,
                    allocation_interval=options.allocation_interval,
                    agent_ping_timeout=options.agent_ping_timeout,
                    max_agent_ping_timeouts=options.max_agent_ping_timeouts,
                    offer_timeout=options.offer_timeout,
                    agent_reregister_timeout=options.agent_reregister_timeout,
                    work_dir=options.master_dir,
                    framework_authenticator=(
                        None
                        if options.framework_credentials is None
                        else FrameworkAuthenticator(options.framework_credentials)
                    ),
                )
            )
            if options.master_url is None
            else None
        )
        #: Host process of each agent index (the "machines"); replaced on power on.
        self.hosts: dict[int, trio.Process] = {}
        #: Every host process ever started (stopped when the cluster stops).
        self.agent_processes: list[trio.Process] = []
        self.work_dir: Path | None = options.work_dir
        self.simulated: SimulatedAgents | None = None

    @property
    def master(self) -> Master:
        """The master running in this process (not there with ``master_url``)."""
        if self._master is None:
            raise RuntimeError(f"the master is not in this process ({self.options.master_url})")
        return self._master

    @property
    def url(self) -> str:
        return self.master.url if self._master is not None else str(self.options.master_url)

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Start everything, report the master URL, run until cancelled, then stop it
        all: the agents first, so that the master hears them unregister."""
        own_dir = self.options.work_dir is None
        work_dir = Path(tempfile.mkdtemp(prefix="mesos-local-")) if own_dir else self.work_dir
        assert work_dir is not None
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        # Shielded from the cluster's cancellation; cancelled once the agents are gone.
        master_scope = trio.CancelScope(shield=True)
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await self._start(nursery, master_scope)
                    task_status.started(self.url)
                    await trio.sleep_forever()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._stop_agents()
                    master_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if self.agent_processes:
                    reap_tasks(work_dir)
                if own_dir:
                    shutil.rmtree(work_dir, ignore_errors=True)

    async def _start(self, nursery: trio.Nursery, master_scope: trio.CancelScope) -> None:
        """The master (unless it runs elsewhere), simulated agents, agent processes; with
        the master here, return once every agent registered."""
        if self._master is not None:
            await nursery.start(self._run_master, master_scope)
        if self.options.simulated_agents:
            self.simulated = SimulatedAgents(
                self.master,
                self.options.simulated_agents,
                resources=Resources.parse(self.options.agent_resources[0]),
                attributes=parse_attributes(self.options.agent_attributes[0]),
                step=self.options.simulated_task_step,
                retry=self.options.status_update_retry,
            )
            await nursery.start(self.simulated.run)
        for index in range(self.options.agents):
            await self._start_agent(index)
        if self._master is None:
            log.info("mesos-local: %d agent(s) of master %s", self.options.agents, self.url)
            return
        with trio.fail_after(AGENT_START_TIMEOUT):
            await self.master.membership.wait_agents(
                self.options.agents + self.options.simulated_agents
            )
        log.info(
            "mesos-local: master %s with %d agent(s) and %d simulated",
            self.url,
            self.options.agents,
            self.options.simulated_agents,
        )

    async def _run_master(
        self,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with scope:
            await self.master.run(task_status=task_status)

    def agent_work_dir(self, index: int) -> Path:
        assert self.work_dir is not None
        return self.work_dir / f"agent-{index}"

    async def _start_agent(self, index: int) -> trio.Process:
        options = self.options
        resources = options.agent_resources[min(index, len(options.agent_resources) - 1)]
        attributes = options.agent_attributes[min(index, len(options.agent_attributes) - 1)]
        work_dir = self.agent_work_dir(index)
        argv = [
            sys.executable, "-m", "marathon_mesos_local.host", "--work_dir", str(work_dir), "--",
            sys.executable, "-m", "marathon_mesos_local.agent",
            "--master", self.url,
            "--ip", options.agent_ip(index),
            "--port", str(options.agent_port),
            "--work_dir", str(work_dir),
            "--resources", resources,
            "--attributes", attributes,
            "--status_update_retry", str(options.status_update_retry),
            "--containerizers", options.containerizers,
            "--docker_socket", options.docker_socket,
        ]  # fmt: skip
        process = await trio.lowlevel.open_process(
            argv, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.agent_processes.append(process)
        self.hosts[index] = process
        return process

    # -- faults, for tests -------------------------------------------------------------

    def agent_id(self, index: int) -> str | None:
        """The master's id for agent ``index`` (registered or unreachable), if any."""
        ip = self.options.agent_ip(index)
        for agents in (self.master.agents, self.master.unreachable_agents):
            for agent in agents.values():
                if agent.hostname == ip:
                    return agent.id
        return None

    def agent_pid(self, index: int) -> int | None:
        """Pid of the agent process of ``index`` (the child of its host), if it runs."""
        host = self.hosts.get(index)
        if host is None or host.returncode is not None:
            return None
        try:
            children = Path(f"/proc/{host.pid}/task/{host.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    async def power_on(self, index: int) -> str:
        """Start the machine of agent ``index`` again (a new boot: nothing is recovered).

        Returns the agent id once the agent registered.
        """
        before = self.agent_id(index)
        await self._start_agent(index)
        with trio.fail_after(AGENT_START_TIMEOUT):
            while True:
                agent_id = self.agent_id(index)
                if agent_id is not None and agent_id != before and agent_id in self.master.agents:
                    return agent_id
                await self.master.membership.agents_changed()

    async def power_off(self, index: int, *, timeout: float = 10.0) -> None:
        """Pull agent ``index``'s power cord: SIGKILL its machine's whole process group.

        Returns once no process of that group (agent, tasks, their children) is left.
        The master notices only through missed pings, as with a real machine.
        """
        host = self.hosts[index]
        _signal(host.pid, signal.SIGKILL, group=True)
        with trio.fail_after(timeout):
            await host.wait()
            while group_members(host.pid):
                _signal(host.pid, signal.SIGKILL, group=True)
                await trio.sleep(0.01)

    async def restart_agent(self, index: int, *, timeout: float = AGENT_START_TIMEOUT) -> str:
        """SIGKILL the agent process only (not its tasks); its host restarts it.

        Returns the agent id once the restarted agent re-registered with the master.
        """
        pid = self.agent_pid(index)
        agent_id = self.agent_id(index)
        if pid is None or agent_id is None:
            raise RuntimeError(f"agent {index} is not running")
        since = time.time()
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(timeout):
            while True:
                agent = self.master.agents.get(agent_id)
                if agent is not None and (agent.reregistered_time or 0) >= since:
                    return agent_id
                await self.master.membership.agents_changed()

    def pause_agent(self, index: int) -> None:
        """SIGSTOP the agent process (its tasks keep running): a partition, as seen
        by the master, whose pings go unanswered."""
        pid = self.agent_pid(index)
        if pid is None:
            raise RuntimeError(f"agent {index} is not running")
        os.kill(pid, signal.SIGSTOP)

    def resume_agent(self, index: int) -> None:
        """SIGCONT the agent process; once it notices the master stopped pinging it, it
        re-registers."""
        pid = self.agent_pid(index)
        if pid is None:
            raise RuntimeError(f"agent {index} is not running")
        os.kill(pid, signal.SIGCONT)

    async def _stop_agents(self) -> None:
        alive = [p for p in self.agent_processes if p.returncode is None]
        for process in alive:
            _signal(process.pid, signal.SIGCONT, group=True)  # a paused agent must hear
            _signal(process.pid, signal.SIGTERM)
        with trio.move_on_after(AGENT_STOP_TIMEOUT):
            for process in alive:
                await process.wait()
        for process in alive:
            if process.returncode is None:
                log.warning("agent host %s did not stop in time; killing it", process.pid)
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


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def reap_tasks(work_dir: Path) -> int:
    """SIGKILL task processes left behind with a sandbox under ``work_dir``."""
    root = os.path.realpath(work_dir).encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if not any(v.startswith(CONTAINER_MARKER.encode() + b"=") for v in environ):
            continue
        sandbox = next((v[len(b"MESOS_SANDBOX=") :] for v in environ
                        if v.startswith(b"MESOS_SANDBOX=")), b"")  # fmt: skip
        if os.path.realpath(sandbox).startswith(root + b"/"):
            _signal(int(entry.name), signal.SIGKILL)
            killed += 1
    if killed:
        log.warning("killed %d task process(es) left behind by agents", killed)
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
