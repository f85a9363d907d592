"""RecordIO decoding: any chunking of any records gives the records back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marathon_core.mesos.recordio import RecordIODecoder, RecordIOError, encode


@given(
    records=st.lists(st.binary(min_size=1, max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_any_chunking_gives_the_records_back(records: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode(r) for r in records)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    decoder = RecordIODecoder()
    out: list[bytes] = []
    previous = 0
    for point in [*points, len(stream)]:
        out.extend(decoder.feed(stream[previous:point]))
        previous = point
    assert out == records
    assert decoder.buffered == 0


def test_byte_by_byte_and_wire_example() -> None:
    decoder = RecordIODecoder()
    stream = b'20\n{"type":"HEARTBEAT"}' + encode(b"x" * 1000)
    out = [r for i in range(len(stream)) for r in decoder.feed(stream[i : i + 1])]
    assert out == [b'{"type":"HEARTBEAT"}', b"x" * 1000]


@pytest.mark.parametrize("garbage", [b"abc\n{}", b"-1\n", b"9" * 40])
def test_garbage_is_an_error(garbage: bytes) -> None:
    with pytest.raises(RecordIOError):
        RecordIODecoder().feed(garbage)
