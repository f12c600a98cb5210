"""The FrameWriter's peak memory follows row_group_size, not the frame's size."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from parquet_ingestor.records import JsonLines
from parquet_ingestor_parquet.encoder import ParquetEncoder
from parquet_ingestor_parquet.writer import ArrowFrameWriter

pytestmark = pytest.mark.timeout(180)


class Discard(io.RawIOBase):
    """A sink stream that only counts bytes."""

    def __init__(self):
        self.count = 0

    def writable(self):
        return True

    def write(self, data):
        self.count += len(data)
        return len(data)

    def tell(self):
        return self.count


_POOLS = []  # a pool must outlive every buffer it handed out, so these are never freed


def peak_while_writing(encoder, frame) -> tuple[int, int]:
    """(max bytes the writer's own memory pool held, bytes written)."""
    pool = pa.proxy_memory_pool(pa.system_memory_pool())
    _POOLS.append(pool)
    stream = Discard()
    default = pa.default_memory_pool()
    pa.set_memory_pool(pool)  # catch allocations that do not go through the writer's pool too
    try:
        writer = ArrowFrameWriter(stream, frame.table.schema, encoder.settings, memory_pool=pool)
        writer.write(frame)
        writer.close({})
    finally:
        pa.set_memory_pool(default)
    return pool.max_memory(), stream.count


def test_peak_grows_with_row_group_size_not_frame_size(events):
    lines = events(40_000)
    encoder = ParquetEncoder(row_group_size=2_000)
    small = encoder.decode(JsonLines(lines[:10_000], list(range(10_000)))).frame
    large = encoder.decode(JsonLines(lines, list(range(40_000)))).frame
    peak_small, written_small = peak_while_writing(encoder, small)
    peak_large, written_large = peak_while_writing(encoder, large)
    assert written_large > 3.5 * written_small
    assert peak_large < 1.5 * peak_small  # 4x the rows, about the same peak

    bigger_groups = ParquetEncoder(row_group_size=20_000)
    peak_big_groups, _ = peak_while_writing(bigger_groups, large)
    assert peak_big_groups > 3 * peak_large  # 10x the row group, several times the peak
