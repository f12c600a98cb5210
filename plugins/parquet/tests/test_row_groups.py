"""Row groups span frames: a file that collects small frames from many flushes still gets
row groups of row_group_size rows / row_group_bytes; open writers share a memory budget and
write their row groups early when it is tight."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from parquet_ingestor_parquet.frame import ArrowFrame
from parquet_ingestor_parquet.writer import ArrowFrameWriter, WriterBudget, WriteSettings


def frame(start: int, n: int) -> ArrowFrame:
    table = pa.table({"n": pa.array(range(start, start + n), pa.int64()),
                      "text": pa.array([f"value {i}" * 4 for i in range(start, start + n)])})
    return ArrowFrame(table, list(range(n)))


def row_groups(data: bytes) -> list[int]:
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def write(frames: list[ArrowFrame], settings: WriteSettings,
          budget: WriterBudget | None = None) -> tuple[bytes, ArrowFrameWriter]:
    out = io.BytesIO()
    writer = ArrowFrameWriter(out, frames[0].table.schema, settings, budget=budget)
    for f in frames:
        writer.write(f)
    writer.close({})
    return out.getvalue(), writer


def test_small_frames_make_row_groups_of_row_group_size() -> None:
    frames = [frame(i * 500, 500) for i in range(20)]  # 10,000 rows in 20 flushes
    data, _ = write(frames, WriteSettings(row_group_size=4_000, row_group_bytes=1 << 30))
    assert row_groups(data) == [4_000, 4_000, 2_000]
    assert pq.read_table(io.BytesIO(data)).column("n").to_pylist() == list(range(10_000))


def test_row_group_bytes_cuts_row_groups_too() -> None:
    frames = [frame(i * 500, 500) for i in range(20)]
    one = frames[0].table.nbytes
    data, _ = write(frames, WriteSettings(row_group_size=1 << 20, row_group_bytes=3 * one))
    assert row_groups(data) == [1_500] * 6 + [1_000]


def test_writers_write_early_when_their_budget_is_tight() -> None:
    one = frame(0, 500).table.nbytes
    budget = WriterBudget(limit=2 * one)
    settings = WriteSettings(row_group_size=1 << 20, row_group_bytes=1 << 30)
    a_out, b_out = io.BytesIO(), io.BytesIO()
    schema = frame(0, 1).table.schema
    a = ArrowFrameWriter(a_out, schema, settings, budget=budget)
    b = ArrowFrameWriter(b_out, schema, settings, budget=budget)
    for i in range(6):  # alternating: the two buffers together pass the budget
        (a if i % 2 == 0 else b).write(frame(i * 500, 500))
        assert budget.used <= 2 * one
    a.close({})
    b.close({})
    assert budget.used == 0
    assert sum(row_groups(a_out.getvalue())) == sum(row_groups(b_out.getvalue())) == 1_500
    assert len(row_groups(a_out.getvalue())) > 1  # written early, not as one row group
