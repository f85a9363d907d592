"""A tiny binary container for several byte strings in one stored value.

Why not JSON: a batch of instances is rewritten whenever one of them changes;
with length-prefixed frames the untouched members are copied as bytes, never
decoded and re-encoded.  Layout: one tag byte, then ``[u32 length][bytes]``
repeated (big-endian).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from marathon_core.errors import StorageError

__all__ = [
    "frame_pair",
    "pack",
    "pack_framed",
    "pack_pairs",
    "unpack",
    "unpack_framed_pairs",
    "unpack_pairs",
]

_LEN = struct.Struct(">I")
_TAG = b"\x01"


def pack(items: Iterable[bytes]) -> bytes:
    """Frame ``items`` into one value."""
    parts = [_TAG]
    for item in items:
        parts.append(_LEN.pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def unpack(data: bytes) -> list[bytes]:
    """The items of a value made by :func:`pack`; StorageError if it is damaged."""
    if data[:1] != _TAG:
        raise StorageError(f"unknown frame tag {data[:1]!r}")
    out: list[bytes] = []
    pos, end = 1, len(data)
    while pos < end:
        if pos + 4 > end:
            raise StorageError("truncated frame header")
        (n,) = _LEN.unpack_from(data, pos)
        pos += 4
        if pos + n > end:
            raise StorageError("truncated frame")
        out.append(data[pos : pos + n])
        pos += n
    return out


def pack_pairs(pairs: Iterable[tuple[str, bytes]]) -> bytes:
    """Frame (name, value) pairs."""

    def flat() -> Iterable[bytes]:
        for name, value in pairs:
            yield name.encode()
            yield value

    return pack(flat())


def unpack_pairs(data: bytes) -> dict[str, bytes]:
    """Inverse of :func:`pack_pairs`, in stored order."""
    items = unpack(data)
    if len(items) % 2:
        raise StorageError("odd number of frames in a pair container")
    return {items[i].decode(): items[i + 1] for i in range(0, len(items), 2)}


def frame_pair(name: str, value: bytes) -> bytes:
    """One (name, value) pair as it sits inside a :func:`pack_pairs` value."""
    raw = name.encode()
    return b"".join((_LEN.pack(len(raw)), raw, _LEN.pack(len(value)), value))


def pack_framed(framed: Iterable[bytes]) -> bytes:
    """A :func:`pack_pairs` value from pairs made by :func:`frame_pair` (one join)."""
    return b"".join((_TAG, *framed))


def unpack_framed_pairs(data: bytes) -> dict[str, bytes]:
    """Name -> the pair as :func:`frame_pair` makes it, in stored order.

    Why: a writer that keeps these can change one member of a large value and write
    the value again with one join, without unpacking or framing the others.
    """
    if data[:1] != _TAG:
        raise StorageError(f"unknown frame tag {data[:1]!r}")
    out: dict[str, bytes] = {}
    pos, end = 1, len(data)
    while pos < end:
        start = pos
        if pos + 4 > end:
            raise StorageError("truncated frame header")
        (n,) = _LEN.unpack_from(data, pos)
        name = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
        if pos + 4 > end:
            raise StorageError("odd number of frames in a pair container")
        (m,) = _LEN.unpack_from(data, pos)
        pos += 4 + m
        if pos > end:
            raise StorageError("truncated frame")
        out[name.decode()] = data[start:pos]
    return out
