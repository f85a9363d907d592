"""``/files/browse`` and ``/files/read`` of an agent over a sandbox layout on disk:
Mesos's shapes, and nothing served from outside a run directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from marathon_mesos_local.agent.files import MAX_READ, SandboxFiles
from marathon_mesos_local.http import Request

EXECUTOR = "slaves/S1/frameworks/F1/executors/web.1/runs"


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    run = work / EXECUTOR / "run-1"
    run.mkdir(parents=True)
    (run.parent / "latest").symlink_to("run-1")
    (run.parent / ".run-1.container").write_text("1\nc\n")
    (run / "stdout").write_text("hello\nworld\n")
    (run / "stderr").write_text("")
    (run / "sub").mkdir()
    (run / "sub" / "inner.txt").write_text("inner")
    (run / "root").symlink_to("/")
    (run / "up").symlink_to("..")
    (run / "inside").symlink_to("sub/inner.txt")
    other = work / "slaves/S1/frameworks/F1/executors/db.1/runs/run-2"
    other.mkdir(parents=True)
    (other / "stdout").write_text("other task")
    (run / "neighbour").symlink_to(other / "stdout")
    (work / "meta").mkdir()
    (work / "meta" / "agent.json").write_text("{}")
    return work


def call(files: SandboxFiles, endpoint: str, **query: Any) -> tuple[int, Any]:
    request = Request("GET", f"/files/{endpoint}?{urlencode(query)}", {})
    response = files.browse(request) if endpoint == "browse" else files.read(request)
    body = json.loads(response.body) if response.body.startswith((b"{", b"[")) else None
    return response.status, body


def test_read_by_the_real_and_the_virtual_path(work_dir: Path) -> None:
    files = SandboxFiles(work_dir)
    real = str(work_dir / EXECUTOR / "run-1" / "stdout")
    virtual = f"/{EXECUTOR}/latest/stdout"
    for path in (real, virtual, f"/{EXECUTOR}/run-1/stdout", f"/{EXECUTOR}/latest/sub/../stdout"):
        assert call(files, "read", path=path, offset=0) == (
            200,
            {"data": "hello\nworld\n", "offset": 0},
        ), path
    assert call(files, "read", path=virtual, offset=-1) == (200, {"data": "", "offset": 12})
    assert call(files, "read", path=virtual) == (200, {"data": "", "offset": 12})
    assert call(files, "read", path=virtual, offset=6, length=3) == (
        200,
        {"data": "wor", "offset": 6},
    )
    assert call(files, "read", path=virtual, offset=100) == (200, {"data": "", "offset": 100})
    assert call(files, "read", path=f"/{EXECUTOR}/latest/inside", offset=0)[1]["data"] == "inner"


def test_reads_are_capped_at_sixteen_pages(work_dir: Path) -> None:
    big = work_dir / EXECUTOR / "run-1" / "big"
    big.write_bytes(b"x" * (MAX_READ * 2))
    status, body = call(SandboxFiles(work_dir), "read", path=str(big), offset=0)
    assert status == 200 and len(body["data"]) == MAX_READ


def test_browse_lists_as_mesos(work_dir: Path) -> None:
    files = SandboxFiles(work_dir)
    base = f"/{EXECUTOR}/latest"
    status, listing = call(files, "browse", path=base)
    assert status == 200
    by_path = {entry["path"]: entry for entry in listing}
    assert list(by_path) == sorted(by_path)
    stdout = by_path[f"{base}/stdout"]
    assert set(stdout) == {"path", "nlink", "size", "mtime", "mode", "uid", "gid"}
    assert stdout["size"] == 12 and stdout["mode"].startswith("-rw")
    assert by_path[f"{base}/sub"]["mode"].startswith("d")
    # A link out of the sandbox is shown as a link, never as what it points at.
    assert by_path[f"{base}/root"]["mode"].startswith("l")
    assert by_path[f"{base}/up"]["mode"].startswith("l")
    status, one = call(files, "browse", path=f"{base}/stdout")
    assert status == 200 and [e["path"] for e in one] == [f"{base}/stdout"]


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/slaves/../etc/passwd",
        f"/{EXECUTOR}/latest/../../../../../../../meta/agent.json",
        f"/{EXECUTOR}/latest/root/etc/passwd",
        f"/{EXECUTOR}/latest/up/.run-1.container",
        f"/{EXECUTOR}/latest/neighbour",
        f"/{EXECUTOR}/.run-1.container",
        f"/{EXECUTOR}/latest/missing",
        "/slaves/S1/frameworks/F1",
        "relative/stdout",
    ],
)
def test_nothing_outside_a_run_directory(work_dir: Path, path: str) -> None:
    files = SandboxFiles(work_dir)
    assert call(files, "read", path=path, offset=0)[0] == 404
    assert call(files, "browse", path=path)[0] == 404
    real = path.replace("/slaves", str(work_dir / "slaves"), 1)
    assert call(files, "read", path=real, offset=0)[0] == 404


def test_a_runs_directory_swapped_for_a_link_is_not_served(work_dir: Path) -> None:
    """A link above the run directories (here to a look-alike tree elsewhere) is not
    followed into: only the agent's own tree of runs counts."""
    outside = work_dir.parent / "outside"
    (outside / "executors/x/runs/r").mkdir(parents=True)
    (outside / "executors/x/runs/r/secret").write_text("secret")
    (work_dir / "slaves/S1/frameworks/F2").symlink_to(outside)
    files = SandboxFiles(work_dir)
    path = "/slaves/S1/frameworks/F2/executors/x/runs/r/secret"
    assert os.path.exists(str(work_dir) + path)
    assert call(files, "read", path=path, offset=0)[0] == 404
    assert call(files, "browse", path=path.rsplit("/", 1)[0])[0] == 404


def test_bad_queries(work_dir: Path) -> None:
    files = SandboxFiles(work_dir)
    virtual = f"/{EXECUTOR}/latest"
    assert call(files, "read")[0] == 400
    assert call(files, "browse")[0] == 400
    assert call(files, "read", path=f"{virtual}/stdout", offset="x")[0] == 400
    assert call(files, "read", path=f"{virtual}/stdout", offset=-5)[0] == 400
    assert call(files, "read", path=virtual, offset=0)[0] == 400  # a directory
    os.mkfifo(work_dir / EXECUTOR / "run-1" / "fifo")
    assert call(files, "read", path=f"{virtual}/fifo", offset=0)[0] == 400
