"""A private Docker Engine for tests and benchmarks, and a busybox image made without a registry.

The daemon gets its own data root, exec root, socket, pidfile and cgroup parent under
a short ``/tmp`` directory (containerd's socket path must stay under 108 bytes), no
bridge and no iptables (these machines have neither to give), the vfs storage driver
and cgroupfs. Stopping it removes everything it made: its containers, its mounts, its
cgroups and its directory, even after a failed test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx

__all__ = ["BUSYBOX", "Dockerd", "dockerd_missing", "running_dockerd"]

BUSYBOX = "busybox:local"
CGROUP_MOUNT = Path("/sys/fs/cgroup")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def dockerd_missing() -> str | None:
    """Why no test Docker Engine can run here, or None."""
    if os.geteuid() != 0:
        return "dockerd needs root"
    for binary in ("dockerd", "containerd", "runc"):
        if shutil.which(binary) is None:
            return f"{binary} not found (Debian package docker.io)"
    if not Path("/bin/busybox").is_file():
        return "/bin/busybox not found (Debian package busybox-static)"
    return None


@attrs.frozen
class Dockerd:
    root: Path
    cgroup_parent: str

    @property
    def socket(self) -> str:
        return str(self.root / "sock")

    def client(self) -> httpx.Client:
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=self.socket),
            base_url="http://docker/v1.41",
            timeout=60,
        )

    def containers(self) -> list[dict[str, Any]]:
        with self.client() as client:
            found: list[dict[str, Any]] = client.get("/containers/json", params={"all": 1}).json()
            return found

    def cgroups(self) -> list[Path]:
        """Container cgroups under this daemon's cgroup parent, in any hierarchy."""
        return [
            child
            for hierarchy in CGROUP_MOUNT.iterdir()
            if (hierarchy / self.cgroup_parent).is_dir()
            for child in (hierarchy / self.cgroup_parent).iterdir()
            if child.is_dir()
        ]


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target.startswith(prefix) or target == str(root):
            mounts.append(target)
    return mounts


def import_busybox(daemon: Dockerd) -> None:
    """``busybox:local``: the static busybox and its applets, imported as an image."""
    rootfs = daemon.root / "rootfs"
    for name in ("bin", "tmp", "etc", "proc", "sys", "dev"):
        (rootfs / name).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    applets = subprocess.run(
        [str(rootfs / "bin" / "busybox"), "--list"], capture_output=True, check=True, text=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    archive = daemon.root / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    with daemon.client() as client, archive.open("rb") as data:
        response = client.post(
            "/images/create",
            params={
                "fromSrc": "-",
                "repo": BUSYBOX.split(":")[0],
                "tag": BUSYBOX.split(":")[1],
                "changes": ['CMD ["/bin/sh"]', "ENV PATH=/bin"],
            },
            content=data.read(),
            headers={"Content-Type": "application/x-tar"},
        )
        response.raise_for_status()
        assert "error" not in response.text, response.text
    archive.unlink()
    shutil.rmtree(rootfs)


def _stop(process: subprocess.Popen[bytes], daemon: Dockerd) -> None:
    """Containers, daemon, mounts, cgroups, directory: nothing is left."""
    if process.poll() is None:
        with contextlib.suppress(httpx.HTTPError, OSError), daemon.client() as client:
            for container in client.get("/containers/json", params={"all": 1}).json():
                client.delete(f"/containers/{container['Id']}", params={"force": 1, "v": 1})
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for target in sorted(_mounts_under(daemon.root), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)
    for hierarchy in CGROUP_MOUNT.iterdir():
        parent = hierarchy / daemon.cgroup_parent
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()
    shutil.rmtree(daemon.root, ignore_errors=True)


@contextlib.contextmanager
def running_dockerd() -> Iterator[Dockerd]:
    """A Docker Engine of its own with ``busybox:local`` imported, until the block ends."""
    tag = uuid.uuid4().hex[:8]
    daemon = Dockerd(Path(f"/tmp/mdk-{tag}"), f"marathon-docker-test-{tag}")
    daemon.root.mkdir(parents=True)
    log = (daemon.root / "dockerd.log").open("wb")
    argv = [
            "dockerd",
            "--data-root", str(daemon.root / "data"),
            "--exec-root", str(daemon.root / "x"),
            "-H", f"unix://{daemon.socket}",
            "--pidfile", str(daemon.root / "pid"),
            "--cgroup-parent", f"/{daemon.cgroup_parent}",
            "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
            "--storage-driver=vfs", "--exec-opt", "native.cgroupdriver=cgroupfs",
    ]  # fmt: skip
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                text = (daemon.root / "dockerd.log").read_text(errors="replace")
                raise RuntimeError(f"dockerd exited ({process.returncode}): {text[-2000:]}")
            with contextlib.suppress(httpx.HTTPError, OSError), daemon.client() as client:
                if client.get("/_ping").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd not ready within {START_TIMEOUT} s")
            time.sleep(0.1)
        import_busybox(daemon)
        yield daemon
    finally:
        log.close()
        _stop(process, daemon)
