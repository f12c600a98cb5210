"""A poison entry on Redis Streams, which has no dead-letter queue: with ``--max-deliveries``
the core stops the loop. Without an error sink the entry is delivered a bounded number of
times, ``--exit-when-idle`` still fires, the run names it and exits 1, and the entry stays
pending in the group (never lost); with an error sink it lands there and is acknowledged."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis


def run(ingest_command: Any, redis_url: str, stream: str, out: Path, *extra: str
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ingest_command(
        "--source", "redis-streams", "--source-opt", f"url={redis_url}",
        "--source-opt", f"stream={stream}", "--source-opt", "block=100ms",
        "--source-opt", "claim_idle=500ms", "--encoder", "jsonl", "--sink", "file",
        "--sink-opt", f"path={out}", "--batch-max-age", "300ms", "--max-deliveries", "2",
        "--exit-when-idle", "2s", *extra), capture_output=True, text=True, timeout=90)


def publish(client: redis.Redis, stream: str) -> str:
    for i in range(5):
        client.xadd(stream, {"body": json.dumps({"n": i})})
    poison = client.xadd(stream, {"body": b"{not json"}).decode()
    client.xadd(stream, {"body": json.dumps({"n": 5})})
    return poison


@pytest.mark.timeout(120)
def test_without_an_error_sink_bounded_then_exit_1(
        redis_url: str, stream: str, client: redis.Redis, tmp_path: Path, ingest_command: Any,
        read_output: Any) -> None:
    poison = publish(client, stream)
    done = run(ingest_command, redis_url, stream, tmp_path / "out")
    assert done.returncode == 1, done.stderr[-3000:]
    assert sorted(r["n"] for r in read_output(tmp_path / "out")) == list(range(6))
    named = [line for line in done.stderr.splitlines()
             if poison in line and "max-deliveries" in line]
    assert len(named) == 1, done.stderr[-3000:]  # logged once, however often it came back
    assert "1 message" in done.stderr.splitlines()[-1], done.stderr[-500:]
    (entry,) = client.xpending_range(stream, "parquet-ingestor", "-", "+", 10)
    assert entry["message_id"].decode() == poison  # still pending: never lost
    assert entry["times_delivered"] <= 6


@pytest.mark.timeout(120)
def test_with_an_error_sink_it_lands_there(
        redis_url: str, stream: str, client: redis.Redis, tmp_path: Path, ingest_command: Any,
        read_output: Any) -> None:
    publish(client, stream)
    done = run(ingest_command, redis_url, stream, tmp_path / "out", "--error-sink", "file",
               "--error-sink-opt", f"path={tmp_path / 'errors'}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [e["body"] for e in read_output(tmp_path / "errors")] == ["{not json"]
    assert client.xpending(stream, "parquet-ingestor")["pending"] == 0
