"""Where keys live below the storage root ``<zk path>/state`` (Marathon keeps its state there too)::

    <dir>/<name>#          the value of key ``<dir>/<name>`` (header byte + data)
    <dir>/<name>           a directory: an inner node of some longer key
    #blobs/<key>@<id>@<n>  chunk n of a value too large for one request

Why values and directories are different znodes: the interface allows a key to
hold a value and have children, and a node's version must start at 0 whenever
a key is created, which could not hold if a directory node later took a value.
``#`` is not a legal key character, so names never collide.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

import attrs

__all__ = ["BLOBS", "VALUE_SUFFIX", "ZkLayout", "child_names", "parse_chunk_name"]

#: Marker of a value node (``a/b`` -> ``a/b#``); not a legal key character.
VALUE_SUFFIX = "#"
#: Directory of value chunks under the storage root.
BLOBS = "#blobs"


@attrs.frozen
class ZkLayout:
    """Znode paths of keys, directories and chunks below ``base`` (no trailing ``/``)."""

    base: str

    def dir_path(self, prefix: str) -> str:
        """The directory node of ``prefix`` (``""`` = the root)."""
        return f"{self.base}/{prefix}" if prefix else self.base

    def value_path(self, key: str) -> str:
        return f"{self.base}/{key}{VALUE_SUFFIX}"

    @property
    def blobs_dir(self) -> str:
        return f"{self.base}/{BLOBS}"

    def chunk_path(self, key: str, blob_id: str, n: int) -> str:
        return f"{self.blobs_dir}/{quote(key, safe='')}@{blob_id}@{n}"

    def relative(self, path: str) -> str:
        """The key or prefix of a node below :attr:`base`."""
        return path[len(self.base) + 1 :]

    def key_of_value_path(self, path: str) -> str | None:
        """The key whose value node is ``path``; None for any other path."""
        if path.startswith(self.base + "/") and path.endswith(VALUE_SUFFIX):
            return self.relative(path)[: -len(VALUE_SUFFIX)]
        return None

    def prefix_of_dir_path(self, path: str) -> str | None:
        """The prefix whose directory node is ``path``; None outside the root."""
        if path == self.base or path.startswith(self.base + "/"):
            return self.relative(path)
        return None


def child_names(nodes: list[str]) -> list[str]:
    """The sorted key names of a directory's child nodes (values and directories
    of a name count once; the chunk directory is not a name)."""
    return sorted(
        {
            n[: -len(VALUE_SUFFIX)] if n.endswith(VALUE_SUFFIX) else n
            for n in nodes
            if not n.startswith("#")
        }
    )


def parse_chunk_name(name: str) -> tuple[str, str] | None:
    """``(key, blob id)`` of a chunk node's name; None for a name that is no chunk's."""
    try:
        key, blob_id, _ = name.rsplit("@", 2)
    except ValueError:
        return None
    return unquote(key), blob_id
