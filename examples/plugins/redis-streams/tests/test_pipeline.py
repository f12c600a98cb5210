"""The source in whole pipelines: the ``ingest`` command end to end, XACK strictly after the
file is committed, and nothing lost when writes fail."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from parquet_ingestor import BatchLimits, PipelineSettings, RetryPolicy
from parquet_ingestor.testing import MemorySink, read_rows, run_pipeline
from parquet_ingestor_redis.source import RedisStreamsSource

GROUP = "parquet-ingestor"


def publish(client: redis.Redis, stream: str, n: int, start: int = 0) -> dict[int, str]:
    """XADD ``n`` JSON events; returns seq -> entry id."""
    pipe = client.pipeline(transaction=False)
    for seq in range(start, start + n):
        pipe.xadd(stream, {"body": json.dumps({"seq": seq, "user": f"u{seq % 13}"}).encode()})
    return {start + i: entry.decode() for i, entry in enumerate(pipe.execute())}


def test_ingest_command_end_to_end(redis_url: str, stream: str, client: redis.Redis,
                                   tmp_path: Path, ingest_command: Any, read_output: Any) -> None:
    ids = publish(client, stream, 500)
    client.xadd(stream, {"body": b"this is not json"})
    last = publish(client, stream, 100, start=500)
    ids.update(last)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    done = subprocess.run(ingest_command(
        "--source", "redis-streams", "--source-opt", f"url={redis_url}",
        "--source-opt", f"stream={stream}", "--source-opt", "block=200ms",
        "--transformer", "json", "--transformer-opt", "add_attributes=message_id,timestamp_ms",
        "--encoder", "jsonl", "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}",
        "--sink-opt", "fsync=false", "--error-sink", "file",
        "--error-sink-opt", f"path={tmp_path / 'errors'}",
        "--batch-max-records", "150", "--batch-max-age", "1s", "--exit-when-idle", "1s"),
        capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    rows = read_output(tmp_path / "out")
    assert sorted((r["seq"], r["_message_id"]) for r in rows) == sorted(ids.items())
    assert all(r["user"] == f"u{r['seq'] % 13}" for r in rows)
    assert all(r["_timestamp_ms"] == int(str(r["_message_id"]).split("-")[0]) for r in rows)
    assert len(list((tmp_path / "out").rglob("*.jsonl"))) >= 4  # batches of 150 messages
    (error,) = read_output(tmp_path / "errors")
    assert error["body"] == "this is not json"
    assert client.xpending(stream, GROUP)["pending"] == 0  # every entry acked, the bad one too
    (group,) = client.xinfo_groups(stream)
    assert group["last-delivered-id"].decode() == ids[599]


class PendingAtCommit:
    """A MemorySink that records, at each commit, which entries were still pending (un-acked)."""

    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.inner = MemorySink()
        self.client, self.stream = client, stream
        self.pending_at_commit: dict[str, set[str]] = {}

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        writer = self.inner.open(key, content_type, metadata)
        outer = self

        class Writer:
            def write(self, data: bytes | bytearray | memoryview) -> int:
                return writer.write(data)

            def commit(self) -> None:
                pending = outer.client.xpending_range(outer.stream, GROUP, "-", "+", 100_000)
                outer.pending_at_commit[key] = {p["message_id"].decode() for p in pending}
                writer.commit()

            def abort(self) -> None:
                writer.abort()

        return Writer()

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def close(self) -> None:
        self.inner.close()


SETTINGS = PipelineSettings(batch=BatchLimits(max_bytes=1 << 20, max_records=40, max_age=0.5),
                            workers=3, exit_when_idle=1.0, write_retry=RetryPolicy(attempts=1))


def test_xack_only_after_the_file_is_committed(redis_url: str, stream: str,
                                              client: redis.Redis) -> None:
    ids = publish(client, stream, 300)
    sink = PendingAtCommit(client, stream)
    source = RedisStreamsSource(stream=stream, url=redis_url, block=0.2, claim_idle=60)
    outcome = run_pipeline(source, sink=sink, settings=SETTINGS)
    assert len(outcome.files) >= 300 // 40
    seen: list[int] = []
    for f in outcome.files:
        rows = read_rows(sink.inner.objects[f.key], f.key)
        in_file = {ids[r["seq"]] for r in rows}
        assert in_file <= sink.pending_at_commit[f.key], "acked before its file was committed"
        seen.extend(r["seq"] for r in rows)
    assert sorted(seen) == list(range(300))
    assert client.xpending(stream, GROUP)["pending"] == 0


def test_failed_writes_lose_nothing(redis_url: str, stream: str, client: redis.Redis) -> None:
    ids = publish(client, stream, 200)
    broken = MemorySink(fail_commits=10**9)
    first = RedisStreamsSource(stream=stream, url=redis_url, block=0.2, claim_idle=60,
                               consumer="unlucky")
    outcome = run_pipeline(first, sink=broken, settings=SETTINGS)
    assert not broken.objects and outcome.pipeline.metrics.counts["acked"] == 0
    assert client.xpending(stream, GROUP)["pending"] == 200  # nacked: still pending, not lost
    # the first run's close() handed its entries back: another consumer takes them at once
    second = RedisStreamsSource(stream=stream, url=redis_url, block=0.2, claim_idle=60,
                                consumer="lucky")
    outcome = run_pipeline(second, settings=SETTINGS)
    assert sorted(r["seq"] for r in outcome.rows) == sorted(ids)
    assert client.xpending(stream, GROUP)["pending"] == 0
