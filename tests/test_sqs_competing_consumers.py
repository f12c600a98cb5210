"""Two ``ingest`` processes on one SQS queue (competing consumers) lose and duplicate nothing.

Real subprocesses against moto's server over HTTP: 300 messages of 20 JSON lines each are shared
by two consumers writing Parquet to S3; every event id must be written exactly once, and the queue
must end empty.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

boto3 = pytest.importorskip("boto3")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = [pytest.mark.aws, pytest.mark.slow, pytest.mark.timeout(240)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ingest(queue_url: str, bucket: str, env: dict[str, str],
            port: int) -> subprocess.Popen[str]:
    # --exit-when-idle leaves room for the other consumer to start on a loaded machine (the
    # queue is filled only once both run); the metrics port tells when this one runs. The
    # visibility timeout only has to outlast a stall between two lease extensions (a lapsed
    # lease would let the other consumer take the message: a duplicate the test would blame on
    # the source); it is never waited for.
    cmd = [sys.executable, "-c", "from parquet_ingestor.cli import main; main()",
           "--source", "sqs", "--source-opt", f"queue_url={queue_url}",
           "--source-opt", "wait_time=1s", "--source-opt", "visibility_timeout=20s",
           "--transformer-opt", "lines=true",
           "--sink", "s3", "--sink-opt", f"bucket={bucket}", "--sink-opt", "prefix=events/",
           "--batch-max-age", "1s", "--batch-max-bytes", "256KiB", "--exit-when-idle", "15s",
           "--log-format", "json", "--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _running(proc: subprocess.Popen[str], port: int) -> bool:
    """True once the process serves /metrics (its pipeline is being started)."""
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5):
            return True
    except OSError:
        return False


def test_two_processes_share_one_queue(aws_env: dict[str, str], moto_endpoint: str,
                                       unique_name: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=unique_name)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    ids = [f"e{i:05d}" for i in range(6000)]
    bodies = ["\n".join(json.dumps({"id": i, "n": k}) for k, i in enumerate(ids[j:j + 20]))
              for j in range(0, len(ids), 20)]

    # Both consumers must be polling before the messages arrive: filled first, the queue could
    # be taken whole by the consumer that happened to start sooner (a second on a busy machine).
    ports = [_free_port() for _ in range(2)]
    procs = [_ingest(queue_url, unique_name, aws_env, port) for port in ports]
    try:
        deadline = time.monotonic() + 60
        while not all(_running(p, port) for p, port in zip(procs, ports, strict=True)):
            assert time.monotonic() < deadline, "the consumers did not start in 60 s"
            time.sleep(0.1)
        for j in range(0, len(bodies), 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(k), "MessageBody": b} for k, b in enumerate(bodies[j:j + 10])])
        outputs = [p.communicate(timeout=200) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    written_by = []
    for _, err in outputs:
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
    deadline = time.monotonic() + 10
    while True:
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(empty))[
            "Attributes"]
        if attrs == empty or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert attrs == empty
