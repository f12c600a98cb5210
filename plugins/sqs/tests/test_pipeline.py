"""The SQS source inside a whole pipeline, and the core's source contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.interfaces import Source
from parquet_ingestor.pipeline import PipelineSettings
from parquet_ingestor.plugins import build_registry
from parquet_ingestor.testing import MemorySink, SourceContract, run_pipeline
from parquet_ingestor_sqs.source import SqsSource

pytestmark = pytest.mark.aws


@pytest.mark.timeout(120)
def test_sqs_to_parquet_files_then_queue_is_empty(q, queue_url, make_source, tmp_path):
    good = [json.dumps({"id": i, "user": f"u{i % 7}", "score": i * 1.5}) for i in range(200)]
    bad = ["not json", "[1, 2]", "{broken"]
    q.send_many(queue_url, good + bad)
    source = make_source(queue_url, pollers=2, visibility_timeout="5s")
    encoder = build_registry().get("encoder", "parquet").create({})
    errors = MemorySink()
    settings = PipelineSettings(
        batch=BatchLimits(max_bytes=1 << 20, max_age=1.0), workers=2, exit_when_idle=3.0
    )
    outcome = run_pipeline(source, sink=FileSink(str(tmp_path)), encoder=encoder,
                           error_sink=errors, settings=settings, timeout=90)
    rows = []
    for file in outcome.files:
        rows.extend(pq.read_table(tmp_path / file.key).to_pylist())
    rows.sort(key=lambda r: r["id"])
    assert len(rows) == 200
    for i, row in enumerate(rows):
        assert (row["id"], row["user"], row["score"]) == (i, f"u{i % 7}", i * 1.5)
    assert len(outcome.errors) == 3  # rejected messages went to the error sink, then were acked
    q.wait_until(lambda: q.counts(queue_url) == (0, 0), what="an empty queue")
    assert source.stats["acked"] == 203
    assert source.stats["possible_duplicates"] == 0


class TestSqsSourceContract(SourceContract):
    """The core's conformance suite for sources, against a moto queue per test."""

    @pytest.fixture(autouse=True)
    def _moto(self, moto_endpoint: str, unique_name: str) -> None:
        self.endpoint = moto_endpoint
        self.name = unique_name
        self.sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")

    def make_source(self, bodies: list[bytes]) -> Callable[[], Source]:
        url = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
        for start in range(0, len(bodies), 10):
            entries: list[dict[str, Any]] = [
                {"Id": str(i), "MessageBody": body.decode()}
                for i, body in enumerate(bodies[start : start + 10])
            ]
            self.sqs.send_message_batch(QueueUrl=url, Entries=entries)

        lease = None if self.lease_length is None else f"{self.lease_length:g}s"

        def open_source() -> Source:
            return SqsSource(url, endpoint_url=self.endpoint, region="us-east-1",
                             wait_time=1, pollers=1, visibility_timeout=lease)

        return open_source


class TestSqsLeasedContract(TestSqsSourceContract):
    """The same suite with the lease declared: a 6 s visibility timeout, so release at close
    and nack(0) (within 2 s), acks that stick past the lease, nack delays and lease extension
    are all measured."""

    lease_length = 6.0
    release_within = 2.0
    nack_delay = 2.0
