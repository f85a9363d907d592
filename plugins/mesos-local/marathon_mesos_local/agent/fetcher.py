"""The agent's fetcher: a task's ``CommandInfo.uris`` put into its sandbox before it starts.

It follows Mesos's fetcher (``src/launcher/fetcher.cpp``) for every containerizer:

- ``http://`` and ``https://`` URIs are downloaded (redirects followed; anything but
  200 is an error), ``file://`` URIs and absolute paths are copied. A file URI must be
  readable by the task's user: the agent fetches as root, so it checks for the user.
- The file is named ``output_file`` (a path inside the sandbox) or the URI's basename.
- ``executable`` makes it ``rwxr-xr-x`` (and is not extracted); otherwise ``extract``
  unpacks ``.tar``, ``.tgz``, ``.tar.gz``, ``.tbz2``, ``.tar.bz2``, ``.txz``,
  ``.tar.xz`` and ``.zip`` archives into the sandbox and gunzips a bare ``.gz``; the
  archive itself stays in the sandbox. Nothing of an archive lands outside the
  sandbox: absolute names, ``..``, links pointing out and device files are refused.
- ``cache`` keeps the download in the agent's cache, per user and URI as in Mesos,
  (``<work_dir>/fetch-cache/<user>/``), and later tasks copy or extract from there;
  the least recently used entries go when the cache outgrows :data:`CACHE_SIZE`.

Fetching is blocking file and network work: :func:`fetch` runs it in a thread, so
the agent's other tasks carry on meanwhile. A failure is a :class:`FetchError` whose
text is the agent's TASK_FAILED message.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import posixpath
import shutil
import stat
import tarfile
import threading
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import trio

from marathon_core.task_process import TaskUser

__all__ = ["CACHE_SIZE", "FetchError", "extract", "fetch"]

log = logging.getLogger(__name__)

#: Mesos's default ``--fetcher_cache_size``.
CACHE_SIZE = 2 * 1024**3
#: Connect and stall timeouts of a download (Mesos: ``--fetcher_stall_timeout`` 60 s).
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
#: What an extracted file keeps of its archived mode (no setuid, no group/other write).
EXTRACTED_MODE_MASK = 0o755

_cache_locks: dict[Path, threading.Lock] = {}
_cache_locks_guard = threading.Lock()


class FetchError(Exception):
    """A URI could not be fetched; the text names it and says why."""


async def fetch(
    uris: Sequence[Mapping[str, Any]],
    sandbox: Path,
    *,
    cache: Path,
    user: TaskUser | None,
    container_id: str,
) -> None:
    """Fetch every URI into ``sandbox`` in order (in a worker thread).

    Raises :class:`FetchError` with Mesos's wording: ``Failed to fetch all URIs for
    container '<id>': Failed to fetch '<uri>': <why>``. Cancelling abandons the thread
    (it carries on in the background, into a sandbox nobody uses any more).
    """
    if uris:
        await trio.to_thread.run_sync(
            _fetch_all, uris, sandbox, cache, user, container_id, abandon_on_cancel=True
        )


def _fetch_all(
    uris: Sequence[Mapping[str, Any]],
    sandbox: Path,
    cache: Path,
    user: TaskUser | None,
    container_id: str,
) -> None:
    for uri in uris:
        value = str(uri.get("value", "")).lstrip()
        try:
            _fetch_one(uri, value, sandbox, cache / (user.name if user else "_agent"), user)
        except Exception as exc:  # whatever went wrong, it is this URI's failure
            raise FetchError(
                f"Failed to fetch all URIs for container '{container_id}': "
                f"Failed to fetch '{value}': {exc}"
            ) from exc
        log.info("fetched %r into %s", value, sandbox)


def _fetch_one(
    uri: Mapping[str, Any], value: str, sandbox: Path, cache: Path, user: TaskUser | None
) -> None:
    name = _output_name(uri.get("output_file"), value)
    destination = sandbox / name
    destination.parent.mkdir(parents=True, exist_ok=True)
    if uri.get("cache"):
        source = _through_cache(value, cache, user)
        if uri.get("executable"):
            _copy(source, destination)
            destination.chmod(0o755)
        elif not (uri.get("extract", True) and extract(source, sandbox, name=name)):
            _copy(source, destination)
        return
    _download(value, destination, user)
    if uri.get("executable"):
        destination.chmod(0o755)
    elif uri.get("extract", True):
        extract(destination, sandbox)


def _output_name(output_file: str | None, value: str) -> str:
    """Where in the sandbox the URI goes: ``output_file``, else the URI's basename."""
    if output_file:
        parts = posixpath.normpath(output_file)
        if posixpath.isabs(parts) or parts == ".." or parts.startswith("../"):
            raise FetchError(f"Output file '{output_file}' is not inside the sandbox")
        return parts
    name = posixpath.basename(unquote(urlsplit(value).path))
    if name in ("", ".", ".."):
        raise FetchError("Malformed URI: it names no file")
    return name


def _local_path(value: str) -> Path | None:
    """The file a ``file://`` URI or a bare path names; None for a network URI."""
    parts = urlsplit(value)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(f"File URI of another host '{parts.netloc}'")
        return Path(unquote(parts.path))
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme:
        raise FetchError(f"Unsupported URI scheme '{parts.scheme}'")
    if not value.startswith("/"):
        raise FetchError(
            "A relative path was passed for the resource but the Mesos framework home "
            "was not specified; use an absolute path or a file:// URI"
        )
    return Path(value)


def _download(value: str, destination: Path, user: TaskUser | None) -> None:
    """Copy or download ``value`` to ``destination`` (whole or not at all)."""
    partial = destination.with_name(f".{destination.name}.fetching")
    local = _local_path(value)
    try:
        if local is not None:
            _check_readable(local, user)
            shutil.copyfile(local, partial)
        else:
            with (
                httpx.Client(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as client,
                client.stream("GET", value) as response,
            ):
                if response.status_code != 200:
                    raise FetchError(
                        "Error downloading resource, received HTTP return code "
                        f"{response.status_code}"
                    )
                with open(partial, "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def _check_readable(path: Path, user: TaskUser | None) -> None:
    """The agent copies as root: a task's user only gets files it could read itself."""
    if user is None:
        return
    for directory in reversed(path.parents):
        if not user.permits(directory, 1):
            raise FetchError(f"Permission denied: user '{user.name}' cannot search {directory}")
    if not user.permits(path, 4):
        raise FetchError(f"Permission denied: user '{user.name}' cannot read {path}")


def _through_cache(value: str, cache: Path, user: TaskUser | None) -> Path:
    """The cached copy of ``value``, downloaded first if the cache has none."""
    key = hashlib.sha256(value.encode()).hexdigest()[:24]
    entry = cache / f"{key}-{_output_name(None, value)}"
    with _cache_locks_guard:
        lock = _cache_locks.setdefault(entry, threading.Lock())
    with lock:
        if entry.exists():
            os.utime(entry)  # recently used
            return entry
        cache.mkdir(parents=True, exist_ok=True)
        _download(value, entry, user)
    _evict(cache.parent, keep=entry)
    return entry


def _evict(root: Path, *, keep: Path) -> None:
    """Drop the least recently used cache entries while the cache is over its size."""
    entries = [p for p in root.glob("*/*") if p.is_file() and not p.name.startswith(".")]
    sizes = {p: p.stat().st_size for p in entries}
    total = sum(sizes.values())
    for path in sorted(entries, key=lambda p: p.stat().st_mtime):
        if total <= CACHE_SIZE:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= sizes[path]


def _copy(source: Path, destination: Path) -> None:
    partial = destination.with_name(f".{destination.name}.fetching")
    shutil.copyfile(source, partial)
    os.replace(partial, destination)


def extract(archive: Path, directory: Path, *, name: str | None = None) -> bool:
    """Unpack ``archive`` into ``directory`` if its name (or ``name``) is an archive's.

    Returns False for anything else (Mesos then keeps the file as it is). Raises
    :class:`FetchError` when a member would land outside ``directory`` or the archive
    is broken.
    """
    name = name or archive.name
    try:
        if name.endswith(TAR_SUFFIXES):
            with tarfile.open(archive) as tar:
                # The "data" filter refuses absolute names, "..", links that point out
                # of the directory and device files, and drops setuid bits and owners.
                tar.extractall(directory, filter="data")
        elif name.endswith(".zip"):
            _extract_zip(archive, directory)
        elif name.endswith(".gz"):
            target = directory / Path(name[: -len(".gz")]).name
            with gzip.open(archive, "rb") as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
        else:
            log.warning("not extracting %s: it does not seem to be an archive", name)
            return False
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FetchError(f"Failed to extract archive '{archive}' to '{directory}': {exc}") from exc
    return True


def _inside(directory: Path, path: str) -> Path:
    """``path`` (relative to ``directory`` or absolute; links resolved) if it stays
    inside ``directory``."""
    root = os.path.realpath(directory)
    resolved = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([root, resolved]) != root:
        raise FetchError(f"Archive member '{path}' would be outside the sandbox")
    return Path(resolved)


def _extract_zip(archive: Path, directory: Path) -> None:
    """Unpack a zip as libarchive does (modes and symlinks kept), but only inside
    ``directory``."""
    with zipfile.ZipFile(archive) as zf:
        for member in zf.infolist():
            name = member.filename
            if posixpath.isabs(name) or ".." in name.split("/"):
                raise FetchError(f"Archive member '{name}' would be outside the sandbox")
            mode = member.external_attr >> 16
            if member.is_dir():
                _inside(directory, name).mkdir(parents=True, exist_ok=True)
                continue
            parent = _inside(directory, posixpath.dirname(name))
            parent.mkdir(parents=True, exist_ok=True)
            target = parent / posixpath.basename(name)
            if stat.S_ISLNK(mode):
                link = zf.read(member).decode()
                if posixpath.isabs(link):
                    raise FetchError(f"Archive link '{name}' points outside the sandbox")
                _inside(directory, os.path.join(target.parent, link))
                target.unlink(missing_ok=True)
                target.symlink_to(link)
                continue
            with zf.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            if stat.S_IFMT(mode) == stat.S_IFREG:
                target.chmod(mode & EXTRACTED_MODE_MASK)
