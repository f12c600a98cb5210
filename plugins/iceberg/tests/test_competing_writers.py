"""Two ``ingest`` processes with 4 workers each, on one SQS queue, appending to one table.

Real subprocesses against moto's server over HTTP and one SQLite catalog file: every event must
be in the table exactly once, no commit may be lost, and the table must have exactly as many
snapshots as the processes logged commits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from iceberg_helpers import duckdb_rows, scan_rows

boto3 = pytest.importorskip("boto3")

pytestmark = [pytest.mark.aws, pytest.mark.slow, pytest.mark.timeout(300)]


def _args(queue_url: str, warehouse: Path) -> list[str]:
    return ["--source", "sqs", "--source-opt", f"queue_url={queue_url}",
            "--source-opt", "wait_time=1s", "--source-opt", "visibility_timeout=10s",
            "--transformer-opt", "lines=true", "--workers", "4",
            "--sink", "iceberg", "--sink-opt", "table=demo.events",
            "--sink-opt", f"warehouse={warehouse}",
            "--batch-max-age", "1s", "--batch-max-bytes", "64KiB", "--exit-when-idle", "10s"]


def test_two_processes_four_workers_one_table(competing_runs, moto_endpoint, unique_name,
                                              tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    warehouse = tmp_path / "warehouse"
    ids = [f"e{i:05d}" for i in range(6000)]
    errs = competing_runs.run(_args(queue_url, warehouse), queue_url, competing_runs.bodies(ids),
                              start_within=90, timeout=240)
    logged = []
    for err in errs:
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
