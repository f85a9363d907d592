"""Per-task cgroup v1 directories under this process's own cgroups.

Each controller (``memory``, ``cpu``, ``cpuacct``, ``pids``, ``freezer``) is a
separate v1 hierarchy under ``/sys/fs/cgroup``. A task's cgroup is
``<mount>/<own path>/<root>/<container id>``, where ``<own path>`` is this
process's path in that hierarchy (``/proc/self/cgroup``) and ``<root>`` is
:data:`ROOT` (``$MARATHON_RUNTIME_MESOS_CGROUP_ROOT`` overrides it; tests give
each run its own). Co-mounted controllers (``cpu,cpuacct``) share one directory.

Everything here is a small sysfs read or write, which does not block in any way
that matters; callers use it inline, as the command containerizer reads ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

__all__ = [
    "CONTROLLERS",
    "MIN_MEMORY",
    "ROOT",
    "CgroupError",
    "TaskCgroups",
    "available",
    "format_bytes",
    "own_paths",
]

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer")
#: The directory under this process's cgroups that holds the task cgroups.
ROOT = os.environ.get("MARATHON_RUNTIME_MESOS_CGROUP_ROOT", "marathon-mesos")
MOUNT = Path("/sys/fs/cgroup")
#: Mesos's smallest memory limit (``MIN_MEMORY`` of the memory isolator).
MIN_MEMORY = 32 * 1024 * 1024
#: Mesos's CFS period and smallest quota and shares.
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000
MIN_CPU_SHARES = 2


class CgroupError(OSError):
    """The cgroups of a task cannot be made (no cgroup v1, not root, ...)."""


def own_paths(proc_cgroup: str | None = None) -> dict[str, str]:
    """This process's path per v1 controller, from ``/proc/self/cgroup``."""
    text = proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text()
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                if controller:
                    paths[controller] = parts[2]
    return paths


def available() -> str | None:
    """Why task cgroups cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "the MESOS containerizer needs root to create cgroups"
    own = own_paths()
    for controller in CONTROLLERS:
        if controller not in own or not (MOUNT / controller).is_dir():
            return f"cgroup v1 controller {controller} is not mounted at {MOUNT / controller}"
    return None


def format_bytes(n: int) -> str:
    """Bytes as stout's ``Bytes`` prints them in Mesos messages (``32MB``)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


@attrs.frozen
class TaskCgroups:
    """The cgroup directories of one container, one per controller."""

    container_id: str
    #: controller -> directory (co-mounted controllers point at the same one).
    paths: Mapping[str, Path]

    @classmethod
    def of(cls, container_id: str, root: str | None = None) -> TaskCgroups:
        own = own_paths()
        base = root or ROOT
        paths = {
            c: MOUNT / c / own.get(c, "/").lstrip("/") / base / container_id for c in CONTROLLERS
        }
        return cls(container_id, paths)

    @property
    def memory(self) -> Path:
        return self.paths["memory"]

    def _distinct(self) -> list[Path]:
        seen: dict[str, Path] = {}
        for path in self.paths.values():
            seen.setdefault(os.path.realpath(path), path)
        return list(seen.values())

    def exists(self) -> bool:
        return self.memory.is_dir()

    def create(self, resources: Mapping[str, float]) -> None:
        """Make the directories and write the limits of ``resources`` (cpus, mem in MB)."""
        try:
            for path in self._distinct():
                path.mkdir(parents=True, exist_ok=True)
            mem = resources.get("mem")
            if mem is not None:
                limit = max(int(mem * 1024 * 1024), MIN_MEMORY)
                _write(self.memory / "memory.limit_in_bytes", str(limit))
                memsw = self.memory / "memory.memsw.limit_in_bytes"
                if memsw.exists():
                    _write(memsw, str(limit))
                _write(self.memory / "memory.swappiness", "0")
            cpus = resources.get("cpus")
            if cpus is not None:
                cpu = self.paths["cpu"]
                _write(cpu / "cpu.shares", str(max(int(cpus * 1024), MIN_CPU_SHARES)))
                _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                quota = max(int(cpus * CFS_PERIOD_US), MIN_CFS_QUOTA_US)
                _write(cpu / "cpu.cfs_quota_us", str(quota))
        except OSError as exc:
            self.remove(attempts=1)
            raise CgroupError(exc.errno, f"cannot set up cgroups: {exc}") from exc

    def procs_files(self) -> list[bytes]:
        """The ``cgroup.procs`` files a new task writes ``0`` to (see :func:`enter`)."""
        return [os.fsencode(p / "cgroup.procs") for p in self._distinct()]

    def pids(self) -> list[int]:
        """Processes in the container (from the freezer hierarchy, else memory)."""
        for controller in ("freezer", "memory"):
            with contextlib.suppress(OSError, ValueError):
                text = _read(self.paths[controller] / "cgroup.procs")
                return [int(line) for line in text.split()]
        return []

    def oom_kills(self) -> int:
        """How many processes the kernel OOM-killed in the container (``oom_kill``)."""
        with contextlib.suppress(OSError, ValueError):
            for line in _read(self.memory / "memory.oom_control").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def memory_limitation(self) -> str:
        """Mesos's message for a container that exceeded its memory limit."""

        def value(name: str) -> int:
            try:
                return int(_read(self.memory / name))
            except (OSError, ValueError):
                return 0

        try:
            stat = _read(self.memory / "memory.stat")
        except OSError:
            stat = ""
        return (
            f"Memory limit exceeded: Requested: {format_bytes(value('memory.limit_in_bytes'))} "
            f"Maximum Used: {format_bytes(value('memory.max_usage_in_bytes'))}\n\n"
            f"MEMORY STATISTICS: \n{stat}"
        )

    def freeze(self, state: str) -> None:
        with contextlib.suppress(OSError):
            _write(self.paths["freezer"] / "freezer.state", state)

    def frozen(self) -> bool:
        try:
            return _read(self.paths["freezer"] / "freezer.state").strip() == "FROZEN"
        except OSError:
            return True  # nothing to wait for

    def signal_all(self, sig: int, also: Iterable[int] = ()) -> int:
        """Send ``sig`` to every process of the container; how many there were."""
        pids = {*self.pids(), *also}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        return len(pids)

    def remove(self, *, attempts: int = 20, delay: float = 0.05) -> bool:
        """``rmdir`` every directory (retrying while the kernel lets go); True if all went."""
        left = [p for p in self._distinct() if p.is_dir()]
        for attempt in range(attempts):
            still = []
            for path in left:
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    still.append(path)
            left = still
            if not left:
                return True
            if attempt + 1 < attempts:
                time.sleep(delay)
        return False


def enter(procs_files: list[bytes]) -> None:
    """``preexec_fn`` of a task: move the forked child into its cgroups before exec.

    Only ``os.open``/``os.write`` on precomputed paths: nothing that could need a
    lock another thread of the parent held at fork time.
    """
    for name in procs_files:
        fd = os.open(name, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def kill_now(cgroups: TaskCgroups) -> None:
    """Synchronous destroy for cleanup paths (tests): freeze, SIGKILL all, thaw, rmdir."""
    cgroups.freeze("FROZEN")
    deadline = time.monotonic() + 1.0
    while not cgroups.frozen() and time.monotonic() < deadline:
        time.sleep(0.01)
    cgroups.signal_all(signal.SIGKILL)
    cgroups.freeze("THAWED")
    deadline = time.monotonic() + 5.0
    while cgroups.pids() and time.monotonic() < deadline:
        time.sleep(0.02)
    cgroups.remove()
