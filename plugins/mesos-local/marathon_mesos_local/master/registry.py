"""The master's registry: the agents it admitted and those it marked unreachable.

Real Mesos keeps a registry (``src/master/registry.proto``) in its replicated log so
that a new leading master knows which agents to wait for after a failover; frameworks
are not in it (they come back through the agents and by re-subscribing). This is the
same idea on one machine: ``<master work dir>/registry.json``, versioned JSON,
replaced atomically (temporary file, fsync, rename, fsync of the directory) by every
change, and read once when the master starts. A file this master cannot read stops
it from starting: forgetting the agents in it would silently lose their tasks.

Changes are applied in memory at once and then stored; :meth:`Registry.admit`,
:meth:`Registry.mark_unreachable` and :meth:`Registry.remove` return once the change
is on disk, so the master acts on it only then, as it does after Mesos's registrar.
Changes that arrive while a write is under way are stored together by the next one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

__all__ = ["REGISTRY_FILE", "REGISTRY_VERSION", "Registry", "RegistryError", "UnreachableAgent"]

REGISTRY_FILE = "registry.json"
#: The format this master writes and reads; any other version is refused.
REGISTRY_VERSION = 1

#: An agent as registered: Mesos's ``SlaveInfo`` in JSON (``id``, ``hostname``,
#: ``port``, ``resources``, ``attributes``).
AgentInfo = dict[str, Any]


class RegistryError(Exception):
    """The registry file cannot be used; the master must not start on it."""


@attrs.frozen
class UnreachableAgent:
    """An agent the master gave up on, kept until it re-registers.

    Mesos's registry keeps only the id and the time; the agent's info is kept here too
    so that a restarted master can still name the agent.
    """

    info: AgentInfo
    unreachable_time: float

    @property
    def id(self) -> str:
        return str(self.info["id"]["value"])

    @property
    def hostname(self) -> str:
        return str(self.info.get("hostname", ""))


class Registry:
    """Admitted and unreachable agents, stored in ``path`` (in memory only if None)."""

    def __init__(
        self,
        path: Path | None = None,
        admitted: Mapping[str, AgentInfo] | None = None,
        unreachable: Mapping[str, UnreachableAgent] | None = None,
    ) -> None:
        self.path = path
        self.admitted: dict[str, AgentInfo] = dict(admitted or {})
        self.unreachable: dict[str, UnreachableAgent] = dict(unreachable or {})
        self._changes = 0
        self._stored = 0
        self._lock = trio.Lock()

    @classmethod
    def open(cls, work_dir: Path | None) -> Registry:
        """The registry in ``work_dir`` (empty if there is none yet); raises
        :class:`RegistryError` for a file that is unreadable, damaged or of another
        version. Without a work dir the registry lives in memory, as with Mesos's
        ``--registry=in_memory``."""
        if work_dir is None:
            return cls()
        path = work_dir / REGISTRY_FILE
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise RegistryError(f"cannot read the registry {path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RegistryError(f"the registry {path} is damaged (not JSON: {exc})") from None
        version = data.get("version") if isinstance(data, dict) else None
        if version != REGISTRY_VERSION:
            raise RegistryError(
                f"the registry {path} has version {version!r}; this master reads version "
                f"{REGISTRY_VERSION} only"
            )
        try:
            admitted = {_agent_id(s["info"]): dict(s["info"]) for s in data["slaves"]}
            unreachable = {
                _agent_id(u["info"]): UnreachableAgent(dict(u["info"]), float(u["timestamp"]))
                for u in data["unreachable"]
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(
                f"the registry {path} is damaged ({type(exc).__name__}: {exc})"
            ) from None
        return cls(path, admitted, unreachable)

    async def admit(self, info: AgentInfo) -> None:
        """Admit an agent, or re-admit one that was unreachable or whose info changed
        (Mesos's ``AdmitSlave``, ``MarkSlaveReachable`` and ``UpdateSlave``)."""
        agent_id = _agent_id(info)
        self.unreachable.pop(agent_id, None)
        self.admitted[agent_id] = dict(info)
        await self._store()

    async def mark_unreachable(self, infos: Iterable[AgentInfo], unreachable_time: float) -> None:
        """Move agents from the admitted to the unreachable ones (``MarkSlaveUnreachable``)."""
        for info in infos:
            agent_id = _agent_id(info)
            self.admitted.pop(agent_id, None)
            self.unreachable[agent_id] = UnreachableAgent(dict(info), unreachable_time)
        await self._store()

    async def remove(self, agent_id: str) -> None:
        """Forget an agent that left the cluster for good (``RemoveSlave``)."""
        self.admitted.pop(agent_id, None)
        self.unreachable.pop(agent_id, None)
        await self._store()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REGISTRY_VERSION,
            "slaves": [{"info": info} for info in self.admitted.values()],
            "unreachable": [
                {"info": u.info, "timestamp": u.unreachable_time} for u in self.unreachable.values()
            ],
        }

    async def _store(self) -> None:
        """Return once the registry as it is now is on disk.

        The write is shielded: a change the master was told is durable must be, and
        a write cut short would leave the master and its file disagreeing.
        """
        if self.path is None:
            return
        self._changes += 1
        wanted = self._changes
        with trio.CancelScope(shield=True):
            async with self._lock:
                if self._stored >= wanted:
                    return  # a later write already stored this change
                changes, data = self._changes, json.dumps(self.to_json(), indent=1).encode()
                await trio.to_thread.run_sync(_write_atomically, self.path, data)
                self._stored = changes


def _agent_id(info: Mapping[str, Any]) -> str:
    return str(info["id"]["value"])


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` so that a crash at any moment leaves the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
