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


def test_files_closing_together_make_one_snapshot(make_sink):
    """Files that outlive a batch, one per hourly partition, all close at the end of the run:
    their sets are joined, so the table gets one snapshot of all of them."""
    rows = [{"id": i, "created_at": f"2024-05-01T{i % 3:02d}:30:00Z", "amount": i / 4}
            for i in range(300)]
    sink = make_sink()
    outcome = run_pipeline([json.dumps(r) for r in rows], sink=sink, encoder=ParquetEncoder(),
                           settings=settings(target_file_size=64 << 20, max_file_age=3600.0,
                                             partition_by="event:created_at"))
    assert len(outcome.acked) == 300 and not outcome.nacked
    table = sink.table()
    assert sorted(r["id"] for r in scan_rows(table)) == list(range(300))
    [snapshot] = table.snapshots()
    assert snapshot.summary["ingest.files"] == "3"
    assert snapshot.summary["ingest.messages"] == "300"
    assert len(table.inspect.files()) == 3


def test_a_joined_set_that_fails_nacks_every_file(make_sink):
    rows = [{"id": i, "created_at": f"2024-05-01T{i % 3:02d}:30:00Z"} for i in range(150)]
    sink = make_sink(commit_attempts=1)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("catalog unreachable")

    sink.catalog.commit_table = refuse
    outcome = run_pipeline([json.dumps(r) for r in rows], sink=sink, encoder=ParquetEncoder(),
                           settings=settings(target_file_size=64 << 20, max_file_age=3600.0,
                                             partition_by="event:created_at"))
    assert outcome.acked == []
    assert len(outcome.nacked) == 150
    assert sink.table() is None or sink.table().snapshots() == []
