"""Which values of a commit go inline and which into chunks, so that every request fits.

A value that does not fit in one request even compressed, or that would make
the whole transaction exceed ZooKeeper's 1 MiB request limit (``jute.maxbuffer``),
moves into chunk nodes written before the transaction; the transaction then
stores the small manifest.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from marathon_core.state.storage import Create, Op, Update
from marathon_core.state.zk.encoding import Blob, encode_inline, make_blob
from marathon_core.state.zk.layout import ZkLayout

__all__ = ["MAX_REQUEST", "OP_OVERHEAD", "Payloads"]

#: Bytes one request may carry; ZooKeeper's ``jute.maxbuffer`` is 1 MiB - 1 and the
#: server drops the connection of a larger request (measured: 1.1 MB -> ConnectionLoss).
MAX_REQUEST = 1_000_000
#: Estimated request bytes per op besides path and data (header, ACL, flags).
OP_OVERHEAD = 64


@attrs.define
class Payloads:
    """What the value node of each ``Create``/``Update`` (by index in the ops) stores."""

    threshold: int
    #: Encoded values stored in the value node itself.
    inline: dict[int, bytes] = attrs.Factory(dict)
    #: Values stored in chunks; the value node holds their manifest.
    blobs: dict[int, Blob] = attrs.Factory(dict)

    @classmethod
    def of(cls, ops: Sequence[Op], layout: ZkLayout, threshold: int) -> Payloads:
        """Inline wherever the single op fits in a request."""
        payloads = cls(threshold)
        for i, op in enumerate(ops):
            if isinstance(op, Create | Update):
                data = encode_inline(bytes(op.value), threshold)
                if len(data) + len(layout.value_path(op.key)) + OP_OVERHEAD > MAX_REQUEST:
                    payloads.blobs[i] = make_blob(op.key, bytes(op.value), threshold)
                else:
                    payloads.inline[i] = data
        return payloads

    def data(self, i: int) -> bytes:
        """The bytes the transaction writes to the value node of op ``i``."""
        return self.blobs[i].manifest.dump() if i in self.blobs else self.inline[i]

    def externalize(self, ops: Sequence[Op]) -> bool:
        """Move the largest inline values into chunks until the transaction fits;
        False if nothing was left to move."""
        if not self.inline:
            return False
        encoded = self.inline
        total = sum(len(d) for d in encoded.values())
        moved = False
        for i in sorted(encoded, key=lambda j: -len(encoded[j])):
            if len(encoded[i]) < 1024 or total <= MAX_REQUEST // 2:
                break
            op = ops[i]
            assert isinstance(op, Create | Update)
            self.blobs[i] = make_blob(op.key, bytes(op.value), self.threshold)
            total -= len(encoded.pop(i))
            moved = True
        return moved
