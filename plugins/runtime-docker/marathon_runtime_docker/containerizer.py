"""The agent side of ``container.type: DOCKER``: each task a container of a Docker Engine.

As Mesos's Docker containerizer runs one, through the Engine API on the agent's
``--docker_socket`` (:mod:`.engine`) instead of the ``docker`` CLI:

- launch: pull the image unless the engine has it (``force_pull_image`` always
  pulls), create the container from the task's ``ContainerInfo`` (:mod:`.config`:
  resources, environment, sandbox and volumes, network, parameters), named
  ``mesos-<container id>`` and labelled with the container id, the task, the agent
  and the agent's work dir, then start it. A pull, create or start the engine
  refuses raises with the image and the engine's own message, so the task fails at
  once (TASK_FAILED, REASON_CONTAINER_LAUNCH_FAILED) instead of staying in STAGING;
- while it runs its output is copied from the engine's log stream into the
  sandbox's ``stdout`` and ``stderr`` files;
- wait: the exit code, or ``State.OOMKilled`` as a memory limitation (TASK_FAILED
  with REASON_CONTAINER_LIMITATION_MEMORY and the limit in the message); then the
  container is removed;
- kill: ``stop`` with the grace period (the image's stop signal, SIGKILL after it);
  with no ``wait`` running (an agent that stops) it collects and removes it itself;
- exec (a COMMAND health check): ``docker exec`` through the engine, in the
  container's own environment and user; the output goes to the sandbox's ``stderr``
  and a cancelled exec has its process SIGKILLed (the engine cannot stop an exec);
- recover: the container carrying the id's label, still running or ended while
  the agent was down; its output is copied on from where the sandbox files end;
- remove_orphans: the agent's containers (by its work-dir label) that no task it
  recovers owns are removed, so several agents can share one engine.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path

import trio

from marathon_core.contracts.containerizers import Launch, Termination
from marathon_runtime_docker.config import container_config, memory_limit
from marathon_runtime_docker.engine import STDERR, STDOUT, DockerEngine, EngineError

__all__ = ["LABEL_PREFIX", "DockerContainerizer", "DockerTask"]

log = logging.getLogger(__name__)

LABEL_PREFIX = "mesos-local."
CONTAINER_LABEL = LABEL_PREFIX + "container-id"
TASK_LABEL = LABEL_PREFIX + "task-id"
AGENT_LABEL = LABEL_PREFIX + "agent-id"
WORK_DIR_LABEL = LABEL_PREFIX + "agent-work-dir"
#: How long a finished container's log stream gets to deliver its last bytes.
LOG_DRAIN_TIMEOUT = 5.0


def _format_bytes(size: int) -> str:
    """Mesos's ``Bytes`` wording: the largest unit that divides it (``32MB``)."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def _ports(text: str) -> set[int]:
    """The host ports a task holds, from its ``PORTS`` variable (set by the agent)."""
    return {int(p) for p in text.split(",") if p.strip().isdigit()}


class DockerTask:
    """A running (or ended, not yet reported) container of a task."""

    def __init__(
        self,
        engine: DockerEngine,
        container_id: str,
        docker_id: str,
        sandbox: Path,
        memory: int | None,
    ) -> None:
        self.engine = engine
        self._container_id = container_id
        self.docker_id = docker_id
        self.sandbox = sandbox
        self.memory = memory
        self._termination: Termination | None = None
        self._waiting = False

    @property
    def container_id(self) -> str:
        return self._container_id

    async def _copy_logs(self, done: trio.Event) -> None:
        """Append the container's output to the sandbox files, skipping what they hold.

        The engine replays the log from the start; a recovered task's files already
        hold a prefix of it, so as many bytes of each stream are skipped.
        """
        files = {STDOUT: self.sandbox / "stdout", STDERR: self.sandbox / "stderr"}
        skip = {s: (p.stat().st_size if p.exists() else 0) for s, p in files.items()}
        handles = {s: open(p, "ab") for s, p in files.items()}  # noqa: SIM115 - closed below
        try:
            async for stream, data in self.engine.logs(self.docker_id):
                if stream not in handles:
                    continue
                if skip[stream]:
                    dropped = min(skip[stream], len(data))
                    skip[stream] -= dropped
                    data = data[dropped:]
                if data:
                    handles[stream].write(data)
                    handles[stream].flush()
        except EngineError as exc:
            log.warning("output of %s not copied: %s", self.container_id, exc)
        finally:
            for handle in handles.values():
                handle.close()
            done.set()

    async def wait(self) -> Termination:
        if self._termination is not None:
            return self._termination
        self._waiting = True
        try:
            return await self._wait()
        finally:
            self._waiting = False  # a cancelled waiter leaves the container as it is

    async def _wait(self) -> Termination:
        logs_done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._copy_logs, logs_done)
            try:
                status = await self.engine.wait(self.docker_id)
                state = (await self.engine.inspect(self.docker_id) or {}).get("State", {})
            except EngineError as exc:
                nursery.cancel_scope.cancel()
                return Termination(None, message=f"Lost the container: {exc}")
            with trio.move_on_after(LOG_DRAIN_TIMEOUT):
                await logs_done.wait()
            nursery.cancel_scope.cancel()
        try:
            await self.engine.remove(self.docker_id)
        except EngineError as exc:
            log.warning("container %s not removed: %s", self.docker_id, exc)
        if state.get("OOMKilled"):
            limit = f"Requested: {_format_bytes(self.memory)}" if self.memory else "no limit set"
            self._termination = Termination(
                status,
                message=f"Memory limit exceeded: {limit}; the container was killed by the "
                f"kernel's OOM killer (exit status {status})",
                oom_killed=True,
            )
        else:
            self._termination = Termination(
                status, message=f"Container exited with status {status}"
            )
        return self._termination

    async def kill(self, *, grace_period: float) -> None:
        if self._termination is not None:
            return
        try:
            await self.engine.stop(self.docker_id, timeout=math.ceil(max(grace_period, 0.0)))
        except EngineError as exc:  # the engine is gone: its wait reports the loss
            log.warning("container %s not stopped: %s", self.docker_id, exc)
            return
        if not self._waiting:  # nobody else will collect and remove it (an agent stopping)
            await self.wait()

    async def exec(self, command: Launch) -> Termination:
        """``docker exec`` of ``command`` (``sh -c`` for a shell command) in the container."""
        if command.shell:
            argv = ["sh", "-c", command.command or ""]
        else:
            argv = list(command.arguments) or [command.command or ""]
        try:
            exec_id = await self.engine.exec_create(self.docker_id, argv)
        except EngineError as exc:
            raise RuntimeError(f"docker exec in {self.container_id} refused: {exc}") from None
        try:
            with open(self.sandbox / "stderr", "ab") as stderr:
                async for _, data in self.engine.exec_run(exec_id):
                    stderr.write(data)
                    stderr.flush()
            code = (await self.engine.exec_inspect(exec_id)).get("ExitCode")
        except BaseException:
            with trio.CancelScope(shield=True), contextlib.suppress(EngineError, OSError):
                pid = int((await self.engine.exec_inspect(exec_id)).get("Pid") or 0)
                if pid > 0:
                    os.kill(pid, signal.SIGKILL)
            raise
        status = int(code) if code is not None else -1
        return Termination(status, message=f"Command exited with status {status}")


class DockerContainerizer:
    """``marathon_agent_containerizers()["DOCKER"]`` for the agent with ``work_dir``."""

    def __init__(self, socket: str, *, work_dir: Path) -> None:
        self.engine = DockerEngine(socket)
        self.work_dir = work_dir

    async def launch(self, launch: Launch) -> DockerTask:
        container = launch.container or {}
        docker = container.get("docker") or {}
        image = str(docker.get("image", ""))
        container_id = str(uuid.uuid4())
        name = f"mesos-{container_id}"
        labels = {
            CONTAINER_LABEL: container_id,
            TASK_LABEL: launch.task_id,
            AGENT_LABEL: launch.environment.get("MESOS_AGENT_ID", ""),
            WORK_DIR_LABEL: str(self.work_dir),
        }
        config = container_config(
            container=container,
            name=name,
            command=launch.command,
            arguments=list(launch.arguments),
            shell=launch.shell,
            environment=launch.environment,
            resources=launch.resources,
            ports=_ports(launch.environment.get("PORTS", "")),
            sandbox=launch.sandbox,
            labels=labels,
        )
        launch.sandbox.mkdir(parents=True, exist_ok=True)
        await self._pull(image, force=bool(docker.get("force_pull_image", False)))
        try:
            docker_id = await self.engine.create(name, config)
        except EngineError as exc:
            raise RuntimeError(f"Docker Engine could not create a container of image "
                               f"'{image}': {exc.message}") from None  # fmt: skip
        except BaseException:  # cancelled: the engine may have made it all the same
            with trio.CancelScope(shield=True):
                await self._remove_quietly(name)
            raise
        try:
            await self.engine.start(docker_id)
        except EngineError as exc:
            await self._remove_quietly(docker_id)
            raise RuntimeError(f"Docker Engine could not start the container of image "
                               f"'{image}': {exc.message}") from None  # fmt: skip
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._remove_quietly(docker_id)
            raise
        return DockerTask(
            self.engine, container_id, docker_id, launch.sandbox, memory_limit(launch.resources)
        )

    async def _pull(self, image: str, *, force: bool) -> None:
        try:
            if not force and await self.engine.image_present(image):
                return
            log.info("pulling image %s", image)
            await self.engine.pull(image)
        except EngineError as exc:
            raise RuntimeError(f"Failed to pull image '{image}': {exc.message}") from None

    async def _remove_quietly(self, container: str) -> None:
        """Remove a container (by id or name), logging a refusal."""
        try:
            await self.engine.remove(container)
        except EngineError as exc:
            log.warning("container %s not removed: %s", container, exc)

    async def recover(self, container_id: str, sandbox: Path) -> DockerTask | None:
        """The container of an earlier agent run, running or ended, if it still exists."""
        found = await self.engine.containers({CONTAINER_LABEL: container_id})
        if not found:
            return None
        docker_id = str(found[0]["Id"])
        details = await self.engine.inspect(docker_id)
        if details is None:
            return None
        memory = int(details.get("HostConfig", {}).get("Memory") or 0) or None
        return DockerTask(self.engine, container_id, docker_id, sandbox, memory)

    async def remove_orphans(self, known: Collection[str]) -> None:
        for found in await self.engine.containers({WORK_DIR_LABEL: str(self.work_dir)}):
            labels: Mapping[str, str] = found.get("Labels") or {}
            if labels.get(CONTAINER_LABEL) in known:
                continue
            log.info(
                "removing orphan container %s (task %s)",
                found.get("Names", [found["Id"]])[0],
                labels.get(TASK_LABEL),
            )
            await self._remove_quietly(str(found["Id"]))
