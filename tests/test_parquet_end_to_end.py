"""File -> json -> parquet -> file through the real CLI, read back with DuckDB and pyarrow.

Covers the time-partition side of the Parquet issue: event-time partitions across hours and days,
Hive-style keys that DuckDB reads with ``hive_partitioning``, ``{field:NAME}`` partitions with
hostile values, and rolling files by ``--target-file-size``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")
pq = pytest.importorskip("pyarrow.parquet")

from parquet_ingestor.sample import iter_events  # noqa: E402


def ingest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from parquet_ingestor.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "INGEST_DISABLE_PLUGINS": ""})


def write_events(path: Path, n: int) -> list[dict]:
    events = [json.loads(b) for b in iter_events(n)]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return events


def test_event_time_partitions_read_back_by_duckdb_with_hive_partitioning(tmp_path: Path) -> None:
    events = write_events(tmp_path / "in.jsonl", 3000)
    # spread events over two days and several hours, plus one with an unusable time
    events[0]["created_at"] = "2024-04-30T23:59:59.999Z"
    events[1]["created_at"] = "not a time"
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    result = ingest(
        "--source", "file", "--source-opt", "path=in.jsonl",
        "--sink", "file", "--sink-opt", "path=out",
        "--partition-by", "event:created_at",
        "--key-template", "year=%Y/month=%m/day=%d/hour=%H/{uuid}.{ext}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "out").rglob("*.parquet"))
    hours = {f.parent.relative_to(tmp_path / "out").as_posix() for f in files}
    assert "year=2024/month=04/day=30/hour=23" in hours
    assert {f"year=2024/month=05/day=01/hour={h:02d}" for h in range(6)} <= hours
    rows = duckdb.sql(
        f"select id, created_at, year, month, day, hour from read_parquet("
        f"'{tmp_path}/out/**/*.parquet', hive_partitioning=true)").fetchall()
    assert sorted(r[0] for r in rows) == sorted(e["id"] for e in events)
    by_id = {r[0]: r for r in rows}
    # each record sits in the hour of its own timestamp (the bad one: processing time)
    for event in events[2:200]:
        _, _, year, month, day, hour = by_id[event["id"]]
        stamp = event["created_at"]
        assert (int(year), int(month), int(day), int(hour)) == (
            int(stamp[:4]), int(stamp[5:7]), int(stamp[8:10]), int(stamp[11:13]))
    meta = pq.read_metadata(files[0]).metadata
    assert b"ingest.records" in meta and b"ingest.min_event_time" in meta


def test_missing_time_rejected_to_the_error_sink_when_asked(tmp_path: Path) -> None:
    events = write_events(tmp_path / "in.jsonl", 50)
    events[7]["created_at"] = None
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    result = ingest(
        "--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
        "--sink-opt", "path=out", "--error-sink", "file", "--error-sink-opt", "path=errors",
        "--partition-by", "event:created_at", "--on-missing-time", "reject", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [r for f in (tmp_path / "out").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert sorted(r["id"] for r in rows) == sorted(e["id"] for i, e in enumerate(events) if i != 7)
    errors = [json.loads(line) for f in (tmp_path / "errors").rglob("*.jsonl")
              for line in f.read_text().splitlines()]
    assert len(errors) == 1 and json.loads(errors[0]["body"])["id"] == events[7]["id"]
    assert "event time" in errors[0]["reason"]


HOSTILE = ["../../etc", "/etc/passwd", "%2e%2e", "..", ".", "a\x00b", "x" * 10_000, "ok/../../up"]


def test_hostile_field_values_stay_inside_the_sink_root(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "country": value}) for i, value in enumerate(HOSTILE)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    result = ingest(
        "--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
        "--sink-opt", "path=root/out", "--key-template", "{field:country}/{uuid}.{ext}",
        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = (tmp_path / "root" / "out").resolve()
    written = [p for p in tmp_path.rglob("*.parquet")]
    assert len(written) == len(HOSTILE)
    for path in written:
        assert root in path.resolve().parents
        assert len(path.parent.name) <= 100
    ids = sorted(r["id"] for p in written for r in pq.read_table(p).to_pylist())
    assert ids == list(range(len(HOSTILE)))


def test_target_file_size_rolls_files(tmp_path: Path) -> None:
    write_events(tmp_path / "in.jsonl", 40_000)
    result = ingest(
        "--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
        "--sink-opt", "path=out", "--batch-max-bytes", "64MiB", "--target-file-size", "1MiB",
        "--encoder-opt", "row_group_size=2000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "out").rglob("*.parquet"))
    sizes = [f.stat().st_size for f in files]
    assert len(files) >= 3, sizes
    assert sum(pq.read_metadata(f).num_rows for f in files) == 40_000
    assert max(sizes) < 3 * (1 << 20), sizes
