"""Two ``ingest`` processes on one SQS queue (competing consumers) lose and duplicate nothing.

Real subprocesses against moto's server over HTTP: 300 messages of 20 JSON lines each are shared
by two consumers writing Parquet to S3; every event id must be written exactly once, and the queue
must end empty.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from parquet_ingestor.testing import wait_for

boto3 = pytest.importorskip("boto3")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = [pytest.mark.aws, pytest.mark.slow, pytest.mark.timeout(240)]


def _args(queue_url: str, bucket: str) -> list[str]:
    # --exit-when-idle leaves room for the other consumer to start on a loaded machine (the
    # queue is filled only once both run). The visibility timeout only has to outlast a stall
    # between two lease extensions (a lapsed lease would let the other consumer take the
    # message: a duplicate the test would blame on the source); it is never waited for.
    return ["--source", "sqs", "--source-opt", f"queue_url={queue_url}",
            "--source-opt", "wait_time=1s", "--source-opt", "visibility_timeout=20s",
            "--transformer-opt", "lines=true",
            "--sink", "s3", "--sink-opt", f"bucket={bucket}", "--sink-opt", "prefix=events/",
            "--batch-max-age", "1s", "--batch-max-bytes", "256KiB", "--exit-when-idle", "15s"]


def test_two_processes_share_one_queue(competing_runs: Any, moto_endpoint: str,
                                       unique_name: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=unique_name)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    ids = [f"e{i:05d}" for i in range(6000)]
    errs = competing_runs.run(_args(queue_url, unique_name), queue_url,
                              competing_runs.bodies(ids), start_within=60, timeout=200)
    written_by = []
    for err in errs:
        stops = [json.loads(line) for line in err.splitlines() if '"event": "stopped"' in line]
        written_by.append(stops[-1]["acked"])
    assert all(n > 0 for n in written_by), f"one consumer did all the work: {written_by}"

    got: list[str] = []
    for obj in s3.list_objects_v2(Bucket=unique_name, Prefix="events/").get("Contents", []):
        data = s3.get_object(Bucket=unique_name, Key=obj["Key"])["Body"].read()
        got.extend(pq.read_table(io.BytesIO(data)).column("id").to_pylist())
    assert len(got) == len(set(got)), f"{len(got) - len(set(got))} duplicates"
    assert sorted(got) == ids
    empty = {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    attrs: dict[str, str] = {}

    def queue_empty() -> bool:
        nonlocal attrs
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(empty))[
            "Attributes"]
        return attrs == empty

    wait_for(queue_empty, timeout=10)
    assert attrs == empty
