"""Mesos's ``/files/browse`` and ``/files/read`` on an agent: its tasks' sandboxes.

A task's sandbox is its executor's run directory,
``<work_dir>/slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/<run>``
(a task of a task group has ``.../runs/<run>/tasks/<task>`` in it), with
``runs/latest`` pointing at the newest run, as on a Mesos agent. A client passes
either form Mesos attaches:

- the real directory, as the agent's ``/state`` gives it in ``directory`` of each
  executor (what the Mesos UI and CLI use), or
- the virtual ``/slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/latest``,

followed by ``/stdout``, ``/stderr`` or any path in the sandbox. Nothing outside a
run directory is served: the path is resolved with its links, and anything that
ends up outside the run it names (``..``, a task's symlink to ``/``, a swap of a
link while the file is opened) is a 404, the same answer as a file that does not
exist.

Shapes as Mesos's ``files.cpp``: browse lists ``{path, nlink, size, mtime, mode,
uid, gid}`` (a file gives a one-element list); read answers ``{data, offset}``,
at most 16 pages per call; ``offset=-1`` (or none) gives the size as ``offset``.
"""

from __future__ import annotations

import contextlib
import grp
import os
import posixpath
import pwd
import stat
from pathlib import Path
from typing import Any

from marathon_mesos_local.http import Request, Response

__all__ = ["SandboxFiles"]

#: The most ``/files/read`` returns at once (Mesos: 16 pages).
MAX_READ = os.sysconf("SC_PAGE_SIZE") * 16
#: Components of a run directory below ``slaves``:
#: ``<agent>/frameworks/<fw>/executors/<ex>/runs/<run>``.
_RUN_DEPTH = 7


def _name_of(lookup: Any, number: int) -> str:
    with contextlib.suppress(KeyError):
        return str(lookup(number)[0])
    return str(number)


def _file_info(path: str, st: os.stat_result) -> dict[str, Any]:
    return {
        "path": path,
        "nlink": st.st_nlink,
        "size": st.st_size,
        "mtime": int(st.st_mtime),
        "mode": stat.filemode(st.st_mode),
        "uid": _name_of(pwd.getpwuid, st.st_uid),
        "gid": _name_of(grp.getgrgid, st.st_gid),
    }


def _within(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


class SandboxFiles:
    """Resolves client paths to files inside run directories, and serves them."""

    def __init__(self, work_dir: Path) -> None:
        self.slaves = work_dir.absolute() / "slaves"

    def _resolve(self, requested: str) -> tuple[str, str] | None:
        """(run directory, file) on disk for a client path, both with links resolved;
        None unless the file exists inside the run directory the path names."""
        path = posixpath.normpath(requested)
        if not path.startswith("/"):
            return None
        slaves_real = os.path.realpath(self.slaves)
        rel = None
        for prefix in ("/slaves", str(self.slaves), slaves_real):
            if path.startswith(prefix + "/"):
                rel = path[len(prefix) + 1 :]
                break
        if rel is None:
            return None
        parts = rel.split("/")
        if (
            len(parts) < _RUN_DEPTH
            or (parts[1], parts[3], parts[5]) != ("frameworks", "executors", "runs")
            or parts[6] in ("", ".", "..")
        ):
            return None
        runs = os.path.join(slaves_real, *parts[:6])
        if os.path.realpath(runs) != runs:
            return None  # a link somewhere above the runs: not a sandbox of this agent
        run = os.path.realpath(os.path.join(runs, parts[6]))  # ``latest`` is a link
        if os.path.dirname(run) != runs or not os.path.isdir(run):
            return None
        full = os.path.realpath(os.path.join(run, *parts[_RUN_DEPTH:]))
        if not _within(run, full) or not os.path.exists(full):
            return None
        return run, full

    def browse(self, request: Request) -> Response:
        requested = request.query.get("path", [""])[0]
        if not requested:
            return Response.text(400, "Expecting 'path=value' in query.\n")
        found = self._resolve(requested)
        if found is None:
            return Response(404)
        run, full = found
        if not os.path.isdir(full):
            return Response.json([_file_info(requested, os.stat(full))])
        listing = []
        base = requested.rstrip("/")
        with os.scandir(full) as entries:
            for entry in entries:
                try:
                    target = os.path.realpath(entry.path)
                    # A link out of the sandbox is shown as the link, never its target.
                    st = (
                        os.stat(entry.path)
                        if _within(run, target)
                        else entry.stat(follow_symlinks=False)
                    )
                except OSError:
                    continue
                listing.append(_file_info(f"{base}/{entry.name}", st))
        listing.sort(key=lambda info: str(info["path"]))
        return Response.json(listing)

    def read(self, request: Request) -> Response:
        query = request.query
        requested = query.get("path", [""])[0]
        if not requested:
            return Response.text(400, "Expecting 'path=value' in query.\n")
        try:
            offset = int(query.get("offset", ["-1"])[0])
            length = int(query.get("length", ["-1"])[0])
        except ValueError as exc:
            return Response.text(400, f"Failed to parse offset or length: {exc}.\n")
        if offset < -1 or length < -1:
            return Response.text(400, f"Negative offset or length provided: {offset}, {length}.\n")
        found = self._resolve(requested)
        if found is None:
            return Response(404)
        run, full = found
        if os.path.isdir(full):
            return Response.text(400, "Cannot read a directory.\n")
        try:
            fd = os.open(full, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return Response(404)
        try:
            if not _within(run, os.readlink(f"/proc/self/fd/{fd}")):
                return Response(404)  # a link changed after it was resolved
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return Response.text(400, "Cannot read a file that is not a regular file.\n")
            if offset == -1:
                return Response.json({"data": "", "offset": st.st_size})
            if offset >= st.st_size or length == 0:
                return Response.json({"data": "", "offset": offset})
            wanted = st.st_size - offset if length == -1 else length
            data = os.pread(fd, min(wanted, MAX_READ), offset)
        except OSError as exc:
            return Response.text(500, f"Failed to read file at '{full}': {exc}.\n")
        finally:
            os.close(fd)
        return Response.json({"data": data.decode("utf-8", "replace"), "offset": offset})
