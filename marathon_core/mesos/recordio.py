"""Incremental RecordIO decoding (``<decimal length>\\n<bytes>`` records, back to back).

The SUBSCRIBE stream is one endless HTTP body whose chunk boundaries have nothing to
do with record boundaries, so the decoder keeps whatever is incomplete and returns
records as soon as they are whole. Buffering uses one ``bytearray`` and an offset so
that a stream of many small records is not quadratic.
"""

from __future__ import annotations

__all__ = ["MAX_RECORD", "RecordIODecoder", "RecordIOError", "encode"]

#: Largest record accepted (a full OFFERS event of thousands of agents fits easily).
MAX_RECORD = 256 * 1024 * 1024
# A length of MAX_RECORD has at most this many digits; a longer header is garbage.
_MAX_HEADER = len(str(MAX_RECORD)) + 1


class RecordIOError(ValueError):
    """The byte stream is not RecordIO; the stream must be dropped."""


def encode(record: bytes) -> bytes:
    """Frame one record (tests and tools)."""
    return str(len(record)).encode() + b"\n" + record


class RecordIODecoder:
    """Feed bytes, get complete records back."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: int | None = None  # length of the record being read, once known

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every record completed by it, in order."""
        buffer = self._buffer
        buffer += data
        records: list[bytes] = []
        position = 0
        size = len(buffer)
        while True:
            if self._pending is None:
                newline = buffer.find(b"\n", position, position + _MAX_HEADER + 1)
                if newline < 0:
                    if size - position > _MAX_HEADER:
                        raise RecordIOError("RecordIO length header too long")
                    break
                header = bytes(buffer[position:newline])
                if not header.isdigit():
                    raise RecordIOError(f"bad RecordIO length {header[:32]!r}")
                length = int(header)
                if length > MAX_RECORD:
                    raise RecordIOError(f"RecordIO record of {length} bytes is too large")
                self._pending = length
                position = newline + 1
            end = position + self._pending
            if end > size:
                break
            records.append(bytes(buffer[position:end]))
            position = end
            self._pending = None
        if position:
            del buffer[:position]
        return records

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete record."""
        return len(self._buffer)
