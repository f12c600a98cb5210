"""Files that outlive a batch, on SQS over moto (real HTTP): while a file is open its messages
stay in flight, their visibility extended past a 3 s timeout, nothing acked; after the commit all
are acked and every event is in the output once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.testing import wait_for

pytestmark = pytest.mark.aws
boto3 = pytest.importorskip("boto3")
pq = pytest.importorskip("pyarrow.parquet")


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.mark.timeout(120)
def test_open_file_keeps_messages_in_flight_until_it_commits(
    moto_endpoint: str, unique_name: str, tmp_path: Path,
) -> None:
    from parquet_ingestor_parquet.encoder import ParquetEncoder
    from parquet_ingestor_sqs.source import SqsSource

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    # 40 messages, 5 events each (JSON lines), over two partitions
    sent: list[str] = []
    for start in range(0, 40, 10):
        entries = []
        for m in range(start, start + 10):
            lines = [json.dumps({"id": f"{m}-{k}", "kind": "ab"[k % 2]}) for k in range(5)]
            sent += [f"{m}-{k}" for k in range(5)]
            entries.append({"Id": str(m), "MessageBody": "\n".join(lines)})
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    source = SqsSource(url, endpoint_url=moto_endpoint, region="us-east-1", wait_time="1s",
                       visibility_timeout="3s", pollers=1)
    settings = PipelineSettings(
        batch=BatchLimits(max_bytes=1 << 30, max_records=10, max_age=0.5), workers=1,
        key_template="kind={field:kind}/{uuid}.{ext}", target_file_size=64 << 20,
        max_file_age=0)  # no age limit: the files stay open until stop()
    pipeline = Pipeline(source, FileSink(str(tmp_path / "out"), fsync=False), ParquetEncoder(),
                        JsonTransformer(lines=True), settings)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        wait_for(lambda: pipeline.metrics.snapshot()["batches"] == 4, what="four batches flushed")
        flushed_at = time.monotonic()
        # well past the 3 s visibility timeout: still in flight, extended, nothing acked
        wait_for(lambda: time.monotonic() - flushed_at > 4.0
                 and source.stats["lease_extensions"] >= 40, what="leases extended past 3 s")
        assert source.stats["acked"] == 0
        assert counts(sqs, url) == (0, 40)
        assert list((tmp_path / "out").rglob("*.parquet")) == []  # nothing visible yet
    finally:
        pipeline.stop()
        runner.join(60)
    assert not runner.is_alive()
    assert source.stats["acked"] == 40
    wait_for(lambda: counts(sqs, url) == (0, 0), what="an empty queue")
    files = [p for p in (tmp_path / "out").rglob("*.parquet") if not p.name.startswith(".")]
    assert len(files) == 2  # one file per partition for all four batches
    rows = [r for p in files for r in pq.read_table(p).to_pylist()]
    assert sorted(r["id"] for r in rows) == sorted(sent)
    for path in files:
        kind = path.parent.name.split("=")[1]
        assert {r["kind"] for r in pq.read_table(path).to_pylist()} == {kind}
