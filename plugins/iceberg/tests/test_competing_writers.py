"""Two ``ingest`` processes with 4 workers each, on one SQS queue, appending to one table.

Real subprocesses against moto's server over HTTP and one SQLite catalog file: every event must
be in the table exactly once, no commit may be lost, and the table must have exactly as many
snapshots as the processes logged commits.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from iceberg_helpers import duckdb_rows, scan_rows

boto3 = pytest.importorskip("boto3")

pytestmark = [pytest.mark.aws, pytest.mark.slow, pytest.mark.timeout(300)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ingest(queue_url: str, warehouse: Path, env: dict[str, str],
            port: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", "from parquet_ingestor.cli import main; main()",
           "--source", "sqs", "--source-opt", f"queue_url={queue_url}",
           "--source-opt", "wait_time=1s", "--source-opt", "visibility_timeout=10s",
           "--transformer-opt", "lines=true", "--workers", "4",
           "--sink", "iceberg", "--sink-opt", "table=demo.events",
           "--sink-opt", f"warehouse={warehouse}",
           "--batch-max-age", "1s", "--batch-max-bytes", "64KiB", "--exit-when-idle", "10s",
           "--log-format", "json", "--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _running(proc: subprocess.Popen[str], port: int) -> bool:
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5):
            return True
    except OSError:
        return False


def test_two_processes_four_workers_one_table(aws_env, moto_endpoint, unique_name, tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    warehouse = tmp_path / "warehouse"
    ids = [f"e{i:05d}" for i in range(6000)]
    bodies = ["\n".join(json.dumps({"id": i, "n": k}) for k, i in enumerate(ids[j:j + 20]))
              for j in range(0, len(ids), 20)]
    ports = [_free_port() for _ in range(2)]
    procs = [_ingest(queue_url, warehouse, aws_env, port) for port in ports]
    try:
        deadline = time.monotonic() + 90
        while not all(_running(p, port) for p, port in zip(procs, ports, strict=True)):
            assert time.monotonic() < deadline, "the consumers did not start in 90 s"
            time.sleep(0.1)
        for j in range(0, len(bodies), 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(k), "MessageBody": b} for k, b in enumerate(bodies[j:j + 10])])
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    logged = []
    for _, err in outputs:
        events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        logged.append([e for e in events if e.get("event") == "iceberg_commit"])
    assert all(logged), f"one process did all the work: {[len(c) for c in logged]}"

    catalog = SqlCatalog("default", uri=f"sqlite:///{warehouse / 'catalog.db'}",
                         warehouse=str(warehouse))
    table = catalog.load_table("demo.events")
    snapshots = table.snapshots()
    commits = [c for process in logged for c in process]
    assert len(snapshots) == len(commits)  # no lost commit, none counted twice
    assert {s.snapshot_id for s in snapshots} == {c["snapshot_id"] for c in commits}
    assert len({s.summary["ingest.commit-id"] for s in snapshots}) == len(snapshots)
    for reader in (scan_rows, duckdb_rows):
        got = [row["id"] for row in reader(table)]
        assert len(got) == len(set(got)), f"{len(got) - len(set(got))} duplicates"
        assert sorted(got) == ids
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0",
                     "ApproximateNumberOfMessagesNotVisible": "0"}
