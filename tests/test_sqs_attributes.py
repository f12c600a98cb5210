"""SQS message attributes reach the transformer and become columns in the Parquet output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = [pytest.mark.aws, pytest.mark.timeout(120)]


def test_attributes_become_columns(aws_env: dict[str, str], moto_endpoint: str,
                                   unique_name: str, tmp_path: Path) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    sent = {}
    for i in range(5):
        reply = sqs.send_message(QueueUrl=queue_url, MessageBody=f'{{"n": {i}}}')
        sent[i] = reply["MessageId"]
    cmd = [sys.executable, "-c", "from parquet_ingestor.cli import main; main()",
           "--source", "sqs", "--source-opt", f"queue_url={queue_url}",
           "--source-opt", "wait_time=1s", "--source-opt", "pollers=1",
           "--transformer-opt", "add_attributes=message_id,sent_timestamp=_sent_at",
           "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}",
           "--batch-max-age", "1s", "--exit-when-idle", "3s"]
    result = subprocess.run(cmd, env=aws_env, capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    rows = [r for f in (tmp_path / "out").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert sorted(r["n"] for r in rows) == list(range(5))
    for row in rows:
        assert row["_message_id"] == sent[row["n"]]
        assert isinstance(row["_sent_at"], int) and row["_sent_at"] > 1_600_000_000_000


def test_message_attributes_by_name_and_no_silent_overwrite(
        aws_env: dict[str, str], moto_endpoint: str, unique_name: str, tmp_path: Path) -> None:
    """Issue #17: ``add_attributes=trace_id`` (an SQS MessageAttribute) gave an all-null column;
    a record's own ``_message_id`` was overwritten by the added column without a word."""
    import json

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    for i in range(4):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f'{{"n": {i}}}', MessageAttributes={
            "trace_id": {"DataType": "String", "StringValue": f"trace-{i}"}})
    clash = '{"n": 9, "_message_id": "mine", "nested": {"_message_id": "ok"}}'
    sqs.send_message(QueueUrl=queue_url, MessageBody=clash)
    cmd = [sys.executable, "-c", "from parquet_ingestor.cli import main; main()",
           "--source", "sqs", "--source-opt", f"queue_url={queue_url}",
           "--source-opt", "wait_time=1s", "--source-opt", "pollers=1",
           "--transformer-opt", "add_attributes=message_id,trace_id",
           "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}",
           "--error-sink", "file", "--error-sink-opt", f"path={tmp_path / 'errors'}",
           "--batch-max-age", "1s", "--exit-when-idle", "3s"]
    result = subprocess.run(cmd, env=aws_env, capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    rows = [r for f in (tmp_path / "out").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert sorted((r["n"], r["_trace_id"]) for r in rows) == [(i, f"trace-{i}") for i in range(4)]
    errors = [json.loads(line) for f in (tmp_path / "errors").rglob("*.jsonl")
              for line in f.read_text().splitlines()]
    assert [e["body"] for e in errors] == [clash]
    assert "field '_message_id' is also the column of an added attribute" in errors[0]["reason"]
