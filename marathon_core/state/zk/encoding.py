"""Value bytes as stored in a value node: a header byte, then the data.

Above ``compress_threshold`` (64 KiB, Marathon's ``--zk_compression_threshold``)
a value is zlib-compressed when that makes it smaller.  A value too large for
one request moves into chunk nodes; its value node then holds a :class:`Manifest`
naming them and the checksum of what they hold together.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
import zlib

import attrs

from marathon_core.errors import StorageError

__all__ = [
    "CHUNK_SIZE",
    "COMPRESS_THRESHOLD",
    "Blob",
    "Manifest",
    "decode_inline",
    "encode_inline",
    "is_manifest",
    "make_blob",
]

#: Values above this many bytes are compressed (Marathon's ``--zk_compression_threshold``).
COMPRESS_THRESHOLD = 64 * 1024
#: Data of one chunk node.
CHUNK_SIZE = 900_000

_RAW, _ZLIB, _MANIFEST = b"\x00", b"\x01", b"\x02"


def encode_inline(value: bytes, threshold: int) -> bytes:
    if len(value) > threshold:
        packed = zlib.compress(value, 1)
        if len(packed) < len(value):
            return _ZLIB + packed
    return _RAW + value


def decode_inline(data: bytes, key: str) -> bytes:
    head, body = data[:1], data[1:]
    if head == _RAW:
        return body
    if head == _ZLIB:
        try:
            return zlib.decompress(body)
        except zlib.error:
            raise StorageError(f"zookeeper: damaged compressed value at {key!r}") from None
    raise StorageError(f"zookeeper: unknown value encoding {head!r} at {key!r}")


def is_manifest(data: bytes) -> bool:
    """Whether a value node holds a :class:`Manifest` rather than the value."""
    return data[:1] == _MANIFEST


@attrs.frozen
class Manifest:
    id: str
    chunks: int
    size: int
    compressed: bool
    sha256: str

    def dump(self) -> bytes:
        return _MANIFEST + json.dumps(attrs.asdict(self), separators=(",", ":")).encode()

    @classmethod
    def load(cls, data: bytes, key: str) -> Manifest:
        try:
            return cls(**json.loads(data[1:]))
        except (ValueError, TypeError):
            raise StorageError(f"zookeeper: damaged chunk manifest at {key!r}") from None

    def unpack(self, payload: bytes, key: str) -> bytes:
        """The value of ``key`` from its chunks joined; StorageError if they do not match."""
        if len(payload) != self.size or hashlib.sha256(payload).hexdigest() != self.sha256:
            raise StorageError(f"zookeeper: chunks of {key!r} do not match their manifest")
        return zlib.decompress(payload) if self.compressed else payload


@attrs.define
class Blob:
    """A value stored in chunk nodes, written before the transaction that references it."""

    key: str
    manifest: Manifest
    payload: bytes

    def chunk(self, n: int) -> bytes:
        """The data of chunk ``n``."""
        return self.payload[n * CHUNK_SIZE : (n + 1) * CHUNK_SIZE]


def make_blob(key: str, value: bytes, threshold: int) -> Blob:
    payload, compressed = value, False
    if len(value) > threshold:
        packed = zlib.compress(value, 1)
        if len(packed) < len(value):
            payload, compressed = packed, True
    chunks = max(1, math.ceil(len(payload) / CHUNK_SIZE))
    manifest = Manifest(
        uuid.uuid4().hex, chunks, len(payload), compressed, hashlib.sha256(payload).hexdigest()
    )
    return Blob(key, manifest, payload)
