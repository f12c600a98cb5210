"""The dataset schema grows while a batch is decoded (another flush worker adds a column
between two steps of this one): each batch still comes out in one schema.

The other worker is simulated at the exact step (a unit test); tests/test_partitioned_writes.py
runs the real race through the CLI."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from parquet_ingestor.records import JsonLines
from parquet_ingestor_parquet.encoder import ParquetEncoder
from parquet_ingestor_parquet.jsonread import parse_lines

pytestmark = pytest.mark.timeout(60)


def lines(*texts: str) -> JsonLines:
    return JsonLines([t.encode() for t in texts], list(range(len(texts))))


def test_pieces_of_a_batch_are_fitted_to_one_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = lines('{"id":1,"v":1}', '{"id":2,"v":"a"}', '{"id":3,"v":3}')
    assert len(parse_lines(batch.lines, None, "infer").tables) > 1  # pieces, fitted one by one
    encoder = ParquetEncoder()
    encoder.decode(lines('{"id":0,"v":"x"}'))
    fit = encoder.dataset.fit
    calls = 0

    def fit_while_another_worker_adds_a_column(table: pa.Table, *args: Any) -> pa.Table:
        nonlocal calls
        calls += 1
        if calls == 2:  # between two pieces of this batch, another batch brings "late"
            encoder.dataset.conform(pa.table({"late": [1]}))
        return fit(table, *args)

    monkeypatch.setattr(encoder.dataset, "fit", fit_while_another_worker_adds_a_column)
    decoded = encoder.decode(batch)
    assert calls >= 2
    assert decoded.rejected == []
    assert decoded.frame.table.to_pylist() == [
        {"id": 1, "v": "1"}, {"id": 2, "v": "a"}, {"id": 3, "v": "3"}]
    assert encoder.schema.names == ["id", "v", "late"]  # the next batch gets it

