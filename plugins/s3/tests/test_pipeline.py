"""The S3 sink driven by the real core pipeline, and the core's sink conformance suite."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.pipeline import PipelineSettings
from parquet_ingestor.retry import RetryPolicy
from parquet_ingestor.testing import read_rows, run_pipeline

pytestmark = [pytest.mark.aws, pytest.mark.timeout(180)]
MIB = 1024 * 1024


def events(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "user": f"u{i % 97}", "amount": i * 0.25, "note": f"event {i} " + "x" * 300}
            for i in range(n)]


def one_batch_settings(n: int) -> PipelineSettings:
    return PipelineSettings(
        batch=BatchLimits(max_bytes=256 * MIB, max_records=n, max_age=0),
        workers=2, exit_when_idle=2.0,
        write_retry=RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2),
    )


def test_pipeline_retries_a_file_whose_upload_failed_midway(make_sink, store, inject_fault):
    rows = events(20_000)  # ~7 MB of JSON lines: a multipart upload with 5 MiB parts
    sink = make_sink(bucket=store.bucket, prefix="events/", part_size="5MiB")
    fault = inject_fault(sink.client, "UploadPart", 403, "AccessDenied", "Access Denied")

    outcome = run_pipeline([json.dumps(r) for r in rows], sink=sink,
                           settings=one_batch_settings(len(rows)), timeout=120)

    assert fault.injected == 1  # the first attempt failed in the middle of the upload...
    assert outcome.pipeline.metrics.counts["write_retries"] == 1
    assert len(outcome.acked) == len(rows)  # ...and the retry wrote everything
    assert len(outcome.files) == 1
    written = outcome.files[0]
    assert written.url == f"s3://{store.bucket}/events/{written.key}"
    assert written.bytes > 5 * MIB
    assert store.object_keys() == [f"events/{written.key}"]
    assert read_rows(store.read(f"events/{written.key}"), written.key) == rows
    assert store.pending_uploads() == []  # the failed attempt left no upload behind


def test_pipeline_writes_parquet_read_back_row_by_row(make_sink, store):
    from parquet_ingestor.plugins import build_registry

    registry = build_registry()
    if "parquet" not in registry.names("encoder"):
        pytest.skip("the parquet encoder plugin is not installed")
    encoder = registry.get("encoder", "parquet").create({})
    pq = pytest.importorskip("pyarrow.parquet")

    rows = events(3_000)
    sink = make_sink(bucket=store.bucket, prefix="pq")
    outcome = run_pipeline([json.dumps(r) for r in rows], sink=sink, encoder=encoder,
                           settings=one_batch_settings(len(rows)), timeout=120)

    assert len(outcome.acked) == len(rows)
    assert len(outcome.files) == 1
    key = f"pq/{outcome.files[0].key}"
    assert key.endswith(".parquet")
    head = store.head(key)
    assert head["ContentType"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(store.read(key)))
    assert table.to_pylist() == rows
