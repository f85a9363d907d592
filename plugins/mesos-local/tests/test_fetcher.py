"""The agent's fetcher without an agent: archives, output files, caching, permissions.

Archives are built by the tests themselves, including hostile ones (members with
absolute names, ``..``, links out of the sandbox, devices): nothing may land outside
the sandbox. HTTP downloads go to a real server on loopback, run in a thread.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from marathon_core.task_process import task_user
from marathon_mesos_local.agent.fetcher import FetchError, extract, fetch


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    path = tmp_path / "box" / "runs" / "r1"
    path.mkdir(parents=True)
    return path


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    mode = "w:gz" if path.name.endswith((".tgz", ".tar.gz")) else "w"
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, *, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    return info


def test_a_tarball_is_extracted_with_its_modes(sandbox: Path, tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "app.tgz",
        [
            (member("app", kind=tarfile.DIRTYPE, mode=0o755), None),
            (member("app/run.sh", mode=0o4775), b"#!/bin/sh\necho hi\n"),
            (member("app/data.txt"), b"data"),
            (member("app/current", kind=tarfile.SYMTYPE, link="data.txt"), None),
        ],
    )
    assert extract(archive, sandbox)
    run = sandbox / "app" / "run.sh"
    # setuid and group write are dropped; the executable bits stay
    assert stat.S_IMODE(run.stat().st_mode) == 0o755
    assert (sandbox / "app" / "current").read_text() == "data"


@pytest.mark.parametrize(
    "hostile",
    [
        member("../escape"),
        member("app/../../escape"),
        member("out", kind=tarfile.SYMTYPE, link="../.."),
        member("abs", kind=tarfile.SYMTYPE, link="/etc"),
        member("hard", kind=tarfile.LNKTYPE, link="../../outside"),
        member("dev", kind=tarfile.CHRTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "symlink-out", "symlink-abs", "hardlink", "device"],
)
def test_hostile_tar_members_are_refused(sandbox: Path, tmp_path: Path, hostile) -> None:
    (tmp_path / "outside").write_text("secret")
    archive = make_tar(tmp_path / "evil.tar", [(hostile, b"x" if hostile.isreg() else None)])
    before = sorted(p for p in tmp_path.rglob("*") if sandbox not in p.parents)
    with pytest.raises(FetchError, match="Failed to extract archive"):
        extract(archive, sandbox)
    after = sorted(p for p in tmp_path.rglob("*") if sandbox not in p.parents)
    assert after == before


def test_absolute_tar_names_land_inside(sandbox: Path, tmp_path: Path) -> None:
    """As libarchive does by default: the leading slash is dropped."""
    name = f"/{tmp_path.name}-absolute-escape"
    extract(make_tar(tmp_path / "abs.tar", [(member(name), b"x")]), sandbox)
    assert (sandbox / name.lstrip("/")).read_text() == "x"
    assert not Path(name).exists()


def test_a_link_then_a_file_through_it_stays_inside(sandbox: Path, tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "two-step.tar",
        [
            (member("up", kind=tarfile.SYMTYPE, link=".."), None),
            (member("up/escaped"), b"x"),
        ],
    )
    with pytest.raises(FetchError):
        extract(archive, sandbox)
    assert not (sandbox.parent / "escaped").exists()


def make_zip(path: Path, entries: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def test_a_zip_keeps_modes_and_inside_links(sandbox: Path, tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "app.zip",
        [
            ("bin/tool", b"#!/bin/sh\n", stat.S_IFREG | 0o755),
            ("bin/link", b"tool", stat.S_IFLNK | 0o777),
            ("README", b"hello", stat.S_IFREG | 0o666),
        ],
    )
    assert extract(archive, sandbox)
    assert stat.S_IMODE((sandbox / "bin" / "tool").stat().st_mode) == 0o755
    assert os.readlink(sandbox / "bin" / "link") == "tool"
    assert stat.S_IMODE((sandbox / "README").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "entry",
    [
        ("../escape", b"x", stat.S_IFREG | 0o644),
        ("/abs/escape", b"x", stat.S_IFREG | 0o644),
        ("link", b"../../outside", stat.S_IFLNK | 0o777),
        ("abslink", b"/etc/passwd", stat.S_IFLNK | 0o777),
    ],
    ids=["dotdot", "absolute", "symlink-out", "symlink-abs"],
)
def test_hostile_zip_members_are_refused(sandbox: Path, tmp_path: Path, entry) -> None:
    archive = make_zip(tmp_path / "evil.zip", [entry])
    with pytest.raises(FetchError, match="outside the sandbox"):
        extract(archive, sandbox)
    assert not (sandbox.parent / "escape").exists()
    assert not list(sandbox.iterdir())


def test_bare_gz_and_non_archives(sandbox: Path, tmp_path: Path) -> None:
    gz = tmp_path / "notes.txt.gz"
    gz.write_bytes(gzip.compress(b"unzipped"))
    assert extract(gz, sandbox)
    assert (sandbox / "notes.txt").read_text() == "unzipped"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"as is")
    assert not extract(plain, sandbox)
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(FetchError, match=r"broken\.tgz"):
        extract(broken, sandbox)


async def test_http_fetch_extract_executable_and_output_file(
    file_server: tuple[str, Path, list[str]], sandbox: Path, tmp_path: Path
) -> None:
    url, root, _ = file_server
    make_tar(root / "app.tar.gz", [(member("app/data.txt"), b"data")])
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "conf.json").write_text("{}")
    uris = [
        {"value": f"{url}/app.tar.gz", "extract": True},
        {"value": f"{url}/run.sh", "executable": True, "extract": True},
        {"value": f"{url}/conf.json", "output_file": "etc/app/config.json"},
    ]
    await fetch(uris, sandbox, cache=tmp_path / "cache", user=None, container_id="c1")
    assert (sandbox / "app" / "data.txt").read_text() == "data"
    assert (sandbox / "app.tar.gz").exists()  # the archive stays, as in Mesos
    assert stat.S_IMODE((sandbox / "run.sh").stat().st_mode) == 0o755
    assert (sandbox / "etc" / "app" / "config.json").read_text() == "{}"
    assert not [p for p in sandbox.rglob(".*fetching")]


async def test_a_failed_download_names_the_uri_and_the_error(
    file_server: tuple[str, Path, list[str]], sandbox: Path, tmp_path: Path
) -> None:
    url, _, _ = file_server
    with pytest.raises(FetchError) as failed:
        await fetch(
            [{"value": f"{url}/missing.tgz"}],
            sandbox,
            cache=tmp_path / "cache",
            user=None,
            container_id="c1",
        )
    assert str(failed.value) == (
        "Failed to fetch all URIs for container 'c1': "
        f"Failed to fetch '{url}/missing.tgz': "
        "Error downloading resource, received HTTP return code 404"
    )
    assert not list(sandbox.iterdir())


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ({"value": "ftp://127.0.0.1/x"}, "Unsupported URI scheme 'ftp'"),
        ({"value": "relative/file"}, "relative path"),
        ({"value": "file:///no/such/file"}, "No such file"),
        ({"value": "/etc/hostname", "output_file": "../up"}, "not inside the sandbox"),
        ({"value": "/etc/hostname", "output_file": "/etc/x"}, "not inside the sandbox"),
        ({"value": "http://127.0.0.1:1/"}, "names no file"),
    ],
)
async def test_bad_uris(sandbox: Path, tmp_path: Path, uri: dict[str, Any], error: str) -> None:
    with pytest.raises(FetchError, match=error):
        await fetch([uri], sandbox, cache=tmp_path / "cache", user=None, container_id="c")


async def test_cached_uris_are_downloaded_once(
    file_server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    url, root, hits = file_server
    make_tar(root / "tool.tgz", [(member("tool/bin"), b"bin")])
    uri = {"value": f"{url}/tool.tgz", "extract": True, "cache": True}
    for run in ("r1", "r2"):
        box = tmp_path / run
        box.mkdir()
        await fetch([uri], box, cache=tmp_path / "cache", user=None, container_id=run)
        assert (box / "tool" / "bin").read_text() == "bin"
        assert not (box / "tool.tgz").exists()  # extracted straight from the cache
    assert hits == ["/tool.tgz"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_a_file_uri_must_be_readable_by_the_tasks_user(sandbox: Path, tmp_path: Path) -> None:
    nobody = task_user("nobody")
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    with pytest.raises(FetchError, match="Permission denied: user 'nobody'"):
        await fetch(
            [{"value": f"file://{secret}"}],
            sandbox,
            cache=tmp_path / "cache",
            user=nobody,
            container_id="c",
        )
    await fetch(
        [{"value": f"file://{secret}"}], sandbox, cache=tmp_path / "cache", user=None,
        container_id="c",
    )  # fmt: skip
    assert (sandbox / "secret").read_text() == "root only"
