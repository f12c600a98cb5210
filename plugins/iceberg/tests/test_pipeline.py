"""The sink inside a real Pipeline (in process): every message acked once its rows are in the
table, and nothing acked when commits fail."""

from __future__ import annotations

import json
from typing import Any

from iceberg_helpers import by_id, duckdb_rows, scan_rows
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.pipeline import PipelineSettings
from parquet_ingestor.retry import RetryPolicy
from parquet_ingestor.testing import run_pipeline
from parquet_ingestor_parquet.encoder import ParquetEncoder


def bodies(n: int) -> tuple[list[str], list[dict[str, Any]]]:
    rows = [{"id": i, "country": ["fr", "de"][i % 2], "amount": i / 4} for i in range(n)]
    return [json.dumps(r) for r in rows], rows


def settings(**extra: Any) -> PipelineSettings:
    return PipelineSettings(batch=BatchLimits(max_bytes=1 << 20, max_records=100, max_age=1.0),
                            workers=2, exit_when_idle=1.0, **extra)


def test_every_message_acked_after_its_snapshot(make_sink):
    sink = make_sink()
    messages, rows = bodies(450)
    outcome = run_pipeline(messages, sink=sink, encoder=ParquetEncoder(), settings=settings())
    assert len(outcome.acked) == 450 and not outcome.nacked
    table = sink.table()
    assert by_id(scan_rows(table)) == rows
    assert by_id(duckdb_rows(table)) == rows
    snapshots = table.snapshots()
    assert sum(int(s.summary["ingest.messages"]) for s in snapshots) == 450
    assert outcome.pipeline.metrics.counts["iceberg_commits"] == len(snapshots)


def test_nothing_is_acked_when_commits_fail(make_sink):
    sink = make_sink(commit_attempts=2)
    catalog = sink.catalog

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("catalog unreachable")

    catalog.commit_table = refuse
    messages, _ = bodies(150)
    outcome = run_pipeline(messages, sink=sink, encoder=ParquetEncoder(),
                           settings=settings(write_retry=RetryPolicy(2, 0.01, 0.02)))
    assert outcome.acked == []
    assert len(outcome.nacked) == 150
    assert sink.table() is None or sink.table().snapshots() == []
