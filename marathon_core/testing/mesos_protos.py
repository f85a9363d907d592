"""The real Mesos v1 protos, compiled for contract tests, and strict parsing into them.

Why the real protos: a call or event that our JSON builders get subtly wrong (an
unknown field, a missing required one) is rejected by a real Mesos master; parsing
into the compiled messages the same way catches it in a test.  The ``.proto`` files
are kept in the repository (``tests/data/mesos-protos``); grpcio-tools compiles them
in-process, so no ``protoc`` binary is needed.  The pytest fixtures around this live
in :mod:`marathon_core.testing.pytest_plugin`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["compiled_protos", "find_protos", "parse_strict"]

#: Where the protos are looked for, relative to each parent of the starting directory.
CANDIDATES = (Path("tests/data/mesos-protos"),)


def _complete(directory: Path) -> bool:
    return (directory / "mesos" / "v1" / "mesos.proto").exists()


def find_protos(start: Path) -> Path | None:
    """``$MESOS_PROTOS_DIR``, else the first of :data:`CANDIDATES` under ``start`` or a
    parent of it; None if there is none (a test may then skip)."""
    if given := os.environ.get("MESOS_PROTOS_DIR"):
        return Path(given) if _complete(Path(given)) else None
    for parent in (start, *start.parents):
        for candidate in CANDIDATES:
            if _complete(parent / candidate):
                return parent / candidate
    return None


@contextmanager
def compiled_protos(protos: Path, out: Path) -> Iterator[SimpleNamespace]:
    """Compile every ``.proto`` under ``protos`` into ``out`` and import the v1 modules.

    Yields a namespace with ``mesos``, ``scheduler`` and ``master`` (the ``*_pb2``
    modules) and ``json_format``; ``out`` is on ``sys.path`` only inside the block.
    """
    import grpc_tools
    from google.protobuf import json_format
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p) for p in sorted(protos.rglob("*.proto"))]
    status = protoc.main(["protoc", f"-I{protos}", f"-I{include}", f"--python_out={out}", *files])
    assert status == 0, "protoc failed on the Mesos protos"
    sys.path.insert(0, str(out))
    try:
        yield SimpleNamespace(
            mesos=importlib.import_module("mesos.v1.mesos_pb2"),
            scheduler=importlib.import_module("mesos.v1.scheduler.scheduler_pb2"),
            master=importlib.import_module("mesos.v1.master.master_pb2"),
            json_format=json_format,
        )
    finally:
        sys.path.remove(str(out))


def parse_strict(pb: SimpleNamespace, value: dict[str, Any], message: type) -> Any:
    """Parse like the Mesos master: every field known, every required field present."""
    parsed = pb.json_format.ParseDict(value, message())
    missing = parsed.FindInitializationErrors()
    assert not missing, f"missing required fields {missing} in {value}"
    return parsed
