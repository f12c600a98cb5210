"""The dataset schema read back at start merges the newest files' footers (readback.py).

Files stay open across batches and flush workers commit them out of order, so the newest file
by mtime may lack a column (or a struct field) that an older file has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from parquet_ingestor_parquet import readback
from parquet_ingestor_parquet.readback import dataset_schema, newest_file


def put(root: Path, name: str, table: pa.Table, age: float) -> Path:
    """``table`` written to ``root/name``, its mtime ``age`` seconds in the past."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_a_column_the_newest_file_lacks_comes_from_an_older_file(tmp_path):
    put(tmp_path, "year=2024/a.parquet", pa.table({"id": [1], "c": pa.array([5], pa.int64())}),
        age=300)
    put(tmp_path, "year=2024/b.parquet", pa.table({"id": [2], "d": ["x"]}), age=200)
    put(tmp_path, "year=2025/c.parquet", pa.table({"id": [3]}), age=100)
    put(tmp_path, "_tmp/z.parquet", pa.table({"id": [4], "c": ["text"]}), age=0)  # skipped
    put(tmp_path, ".hidden.parquet", pa.table({"e": [1.5]}), age=0)  # skipped
    assert newest_file(str(tmp_path)).url.endswith("/year=2025/c.parquet")
    schema = dataset_schema(str(tmp_path))
    assert schema.names == ["id", "d", "c"]  # the newest's order, then newer to older
    assert schema.field("c").type == pa.int64()
    assert schema.field("d").type == pa.string()
    assert schema.metadata is None


def test_a_struct_widened_in_an_older_file_has_every_field(tmp_path):
    older = pa.struct([("name", pa.string()), ("age", pa.int64()),
                       ("seen", pa.timestamp("us", tz="UTC"))])
    put(tmp_path, "a.parquet", pa.table({"u": pa.array([{"name": "a", "age": 1, "seen": None}],
                                                         older)}), age=200)
    put(tmp_path, "b.parquet", pa.table({"u": pa.array([{"name": "b", "city": "x"}])}), age=100)
    schema = dataset_schema(tmp_path.as_uri())
    # the newest's fields first; a written timestamp stays one (not text, as a fresh JSON one)
    assert schema.field("u").type == pa.struct([
        ("name", pa.string()), ("city", pa.string()), ("age", pa.int64()),
        ("seen", pa.timestamp("us", tz="UTC"))])


def test_conflicting_types_the_newest_file_wins(tmp_path):
    put(tmp_path, "a.parquet", pa.table({"n": pa.array([1.5]), "c": [1]}), age=300)
    put(tmp_path, "b.parquet", pa.table({"n": ["x"], "c": ["y"]}), age=200)
    put(tmp_path, "c.parquet", pa.table({"n": pa.array([1], pa.int64())}), age=100)
    schema = dataset_schema(str(tmp_path))
    assert schema.field("n").type == pa.int64()  # the newest's
    assert schema.field("c").type == pa.string()  # the newer of the files that have it


def test_only_the_newest_footers_are_read(tmp_path, monkeypatch):
    put(tmp_path, "a.parquet", pa.table({"old": [1]}), age=300)
    for n in range(3):
        put(tmp_path, f"b{n}.parquet", pa.table({"id": [n]}), age=200 - n)
    monkeypatch.setattr(readback, "FOOTERS", 3)
    assert dataset_schema(str(tmp_path)).names == ["id"]
    monkeypatch.setattr(readback, "FOOTERS", 4)
    assert dataset_schema(str(tmp_path)).names == ["id", "old"]
    assert dataset_schema(str(tmp_path / "none")) is None


def test_a_restart_keeps_the_type_of_a_column_the_newest_file_lacks(tmp_path):
    """``ingest`` restarted on a dataset whose newest file lacks ``c`` (int64 in an older one):
    ``c`` stays int64 (1.5 is rejected, 7 kept), it is not inferred afresh as double."""
    out = tmp_path / "out"
    put(out, "a.parquet", pa.table({"id": [1], "c": pa.array([5], pa.int64())}), age=300)
    put(out, "b.parquet", pa.table({"id": [2]}), age=100)
    before = set(out.rglob("*.parquet"))
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in [{"id": 3, "c": 1.5},
                                                              {"id": 4, "c": 7}]))
    ingest = str(Path(sys.executable).with_name("ingest"))
    done = subprocess.run(
        [ingest, "--source", "file", "--source-opt", f"path={source}", "--sink", "file",
         "--sink-opt", f"path={out}", "--workers", "1",
         "--error-sink", "file", "--error-sink-opt", f"path={tmp_path / 'errors'}"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "dataset schema read back from" in done.stderr
    new = sorted(set(out.rglob("*.parquet")) - before)
    assert new
    for path in new:
        assert pq.read_schema(path).field("c").type == pa.int64()
    rows = [r for path in new for r in pq.read_table(path).to_pylist()]
    assert rows == [{"id": 4, "c": 7}]
    errors = [json.loads(x) for f in (tmp_path / "errors").rglob("*.jsonl")
              for x in f.read_text().splitlines()]
    assert [json.loads(e["body"])["id"] for e in errors] == [3]
    assert errors[0]["reason"].startswith("field 'c': float value 1.5 cannot be stored in the "
                                          "column's type int64")
    shown = subprocess.run([ingest, "schema", str(out)], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "c: int64" in shown.stdout
    assert f"-- 3 Parquet files; schema merged from the newest 3, the newest {new[0]}" \
        in shown.stdout


@pytest.mark.aws
def test_footers_are_merged_on_s3(aws_env, moto_endpoint, unique_name, monkeypatch):
    import boto3

    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION", "AWS_REGION"):
        if key in aws_env:
            monkeypatch.setenv(key, aws_env[key])
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=unique_name)
    for name, table in [("events/a.parquet", pa.table({"id": [1], "c": [5]})),
                        ("events/b.parquet", pa.table({"id": [2], "d": ["x"]}))]:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        s3.put_object(Bucket=unique_name, Key=name, Body=sink.getvalue().to_pybytes())
    schema = dataset_schema(f"s3://{unique_name}/events/")
    assert set(schema.names) == {"id", "c", "d"}
    assert schema.field("c").type == pa.int64()
