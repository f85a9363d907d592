"""Real ZooKeeper servers for tests: one standalone node or a 3-node ensemble on loopback.

Why real servers: the ZooKeeper backend and the election are about sessions,
ephemeral nodes and transactions; a fake would test our idea of ZooKeeper,
not ZooKeeper.  Recipe: Debian's jar, ``tickTime=200`` so sessions can be short,
readiness by the ``srvr`` Mode line (never ``ruok``: it answers ``imok`` before the
server serves).

Resource handling: every server is a child process in its own session that
also dies with the thread that started it (``PR_SET_PDEATHSIG``), so even a
killed test run leaves no JVM behind; :meth:`ZooKeeperServer.stop` kills only
the pid it started.  Data lives in a directory the caller owns.

Synchronous on purpose: pytest-trio forbids session-scoped trio fixtures, so
the fixtures that start servers are plain sync fixtures.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

__all__ = [
    "ZOOKEEPER_JARS",
    "ZooKeeperEnsemble",
    "ZooKeeperServer",
    "free_ports",
    "missing_zookeeper",
    "zk_mode",
]

#: Debian's ``zookeeper`` package; the jar's manifest Class-Path pulls in the rest.
ZOOKEEPER_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar")

#: Session timeouts a test may ask for (ms): ``tickTime`` 200 gives a floor of 400.
MIN_SESSION_TIMEOUT_MS = 400
MAX_SESSION_TIMEOUT_MS = 60000


def missing_zookeeper() -> str | None:
    """Why ZooKeeper cannot be started here, or None if it can."""
    if shutil.which("java") is None:
        return "java is not installed"
    for jar in ZOOKEEPER_JARS:
        if not os.path.exists(jar):
            return f"{jar} is missing (apt-get install zookeeper)"
    return None


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def zk_mode(port: int, *, timeout: float = 0.5) -> str | None:
    """The ``Mode:`` a server reports (standalone, leader, follower), None if not serving."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"srvr")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return None
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: ") :].strip()
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # PR_SET_PDEATHSIG = 1: the JVM gets SIGKILL if the test process dies.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@attrs.define
class ZooKeeperServer:
    """One ZooKeeper process with its config, data directory and client port."""

    directory: Path
    client_port: int
    server_id: int = 0
    #: ``server.N=...`` lines for an ensemble; empty for standalone.
    peers: Sequence[str] = ()
    #: The JVM's ``-Xmx``: small for tests, larger for benchmarks holding 10k apps.
    heap: str = "256m"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def write_config(self) -> Path:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        if self.server_id:
            (data / "myid").write_text(f"{self.server_id}\n")
        cfg = self.directory / "zoo.cfg"
        lines = [
            "tickTime=200",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={data}",
            f"clientPort={self.client_port}",
            "clientPortAddress=127.0.0.1",
            f"minSessionTimeout={MIN_SESSION_TIMEOUT_MS}",
            f"maxSessionTimeout={MAX_SESSION_TIMEOUT_MS}",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,mntr",
            "forceSync=no",
            *self.peers,
        ]
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def start(self) -> None:
        """Start the process (again, on the same data); does not wait for readiness."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"ZooKeeper {self.hosts} is running already")
        cfg = self.write_config()
        log = open(self.directory / "zk.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(
                [
                    "java",
                    f"-Xmx{self.heap}",
                    "-XX:+UseSerialGC",
                    "-cp",
                    ":".join(ZOOKEEPER_JARS),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                    str(cfg.resolve()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()

    def wait_serving(self, *, timeout: float = 30.0) -> str:
        """Block until the server serves requests; its mode."""
        deadline = time.monotonic() + timeout
        while True:
            mode = zk_mode(self.client_port)
            if mode is not None:
                return mode
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"ZooKeeper {self.hosts} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"ZooKeeper {self.hosts} not serving:\n{self.log_tail()}")
            time.sleep(0.05)

    def mode(self) -> str | None:
        return zk_mode(self.client_port)

    def kill(self) -> None:
        """SIGKILL (a crash); the data directory stays for a restart."""
        self._signal(signal.SIGKILL, wait=5.0)

    def stop(self, *, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; idempotent."""
        self._signal(signal.SIGTERM, wait=timeout)

    def _signal(self, sig: signal.Signals, *, wait: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = (self.directory / "zk.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


@attrs.define
class ZooKeeperEnsemble:
    """Several servers forming one ensemble (or one standalone server)."""

    servers: list[ZooKeeperServer]

    @property
    def hosts(self) -> str:
        """``host:port,...`` as kazoo and ``zk://`` URLs want it."""
        return ",".join(s.hosts for s in self.servers)

    def url(self, path: str = "/marathon") -> str:
        return f"zk://{self.hosts}{path}"

    @classmethod
    def create(cls, directory: Path, *, size: int = 1, heap: str = "256m") -> ZooKeeperEnsemble:
        """Lay out ``size`` servers under ``directory`` (not started)."""
        if size == 1:
            (port,) = free_ports(1)
            return cls([ZooKeeperServer(directory / "zk1", port, heap=heap)])
        ports = free_ports(3 * size)
        peers = [
            f"server.{i + 1}=127.0.0.1:{ports[3 * i + 1]}:{ports[3 * i + 2]}" for i in range(size)
        ]
        return cls(
            [
                ZooKeeperServer(directory / f"zk{i + 1}", ports[3 * i], i + 1, peers, heap)
                for i in range(size)
            ]
        )

    def start(self, *, timeout: float = 30.0) -> None:
        """Start every server and wait until all serve."""
        for s in self.servers:
            s.start()
        for s in self.servers:
            s.wait_serving(timeout=timeout)

    def stop(self) -> None:
        """Stop every server this ensemble started; never raises for one that is gone."""
        for s in self.servers:
            with contextlib.suppress(Exception):
                s.stop()

    def leader(self) -> ZooKeeperServer | None:
        """The server in mode ``leader`` (or the standalone one)."""
        for s in self.servers:
            if s.mode() in ("leader", "standalone"):
                return s
        return None


@contextlib.contextmanager
def running_zookeeper(
    directory: Path, *, size: int = 1, heap: str = "256m"
) -> Iterator[ZooKeeperEnsemble]:
    """Start ``size`` servers in ``directory``; stop them and remove the data on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    ensemble = ZooKeeperEnsemble.create(directory, size=size, heap=heap)
    try:
        ensemble.start()
        yield ensemble
    finally:
        ensemble.stop()
        shutil.rmtree(directory, ignore_errors=True)
