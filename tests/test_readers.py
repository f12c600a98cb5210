"""One dataset, read as a whole by the engines people use (issue 19, docs/reading.md).

The dataset is written by two separate ``ingest`` runs (a restart) over inputs that drift: whole
seconds, then milliseconds, then offsets; ints that later look like floats; a struct that gains
a field; new columns in the second run. Several batches each. Every reader must get every row,
see ``created_at`` as a timestamp (the same instants), and the same types for shared columns.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

UTC = dt.UTC
KEY = "year=%Y/month=%m/day=%d/{unix_ns}-{random}.{ext}"


def _run1() -> list[dict]:
    rows = [{"id": i, "created_at": f"2024-05-01T0{i % 3}:02:03Z", "amount": 3,
             "user": {"name": f"u{i}"}, "tags": ["x"]} for i in range(30)]
    rows += [{"id": i, "created_at": f"2024-05-02T01:02:03.{i:03d}Z", "amount": 2.0,
              "user": {"name": f"u{i}", "age": i}, "tags": ["a"]} for i in range(30, 60)]
    return rows


def _run2() -> list[dict]:
    return [{"id": i, "created_at": "2024-05-02T03:02:03+02:00", "amount": i, "country": "DE",
             "tags": ["b", "c"]} for i in range(60, 90)]


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


EXPECTED = {r["id"]: _instant(r["created_at"]) for r in _run1() + _run2()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readers")
    out = root / "out"
    ingest = str(Path(sys.executable).with_name("ingest"))
    for n, rows in enumerate((_run1(), _run2())):
        source = root / f"run{n}.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
        done = subprocess.run(
            [ingest, "--source", "file", "--source-opt", f"path={source}", "--sink", "file",
             "--sink-opt", f"path={out}", "--key-template", KEY,
             "--partition-by", "event:created_at", "--batch-max-records", "20", "--workers", "1",
             "--error-sink", "file", "--error-sink-opt", f"path={root / 'errors'}"],
            capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "0 rejected" in done.stderr, done.stderr
    assert len(list(out.rglob("*.parquet"))) >= 5
    return out


def _check(ids: list[int], times: list[dt.datetime]) -> None:
    assert sorted(ids) == list(range(90))  # every row, once
    got = {i: (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
           for i, t in zip(ids, times, strict=True)}
    assert got == EXPECTED


def test_the_newest_file_holds_the_dataset_schema(dataset):
    from parquet_ingestor_parquet.readback import newest_file

    schema = newest_file(str(dataset)).schema
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("amount").type == pa.int64()  # 2.0 and 89 fit the first run's int64
    assert schema.field("user").type == pa.struct([("name", pa.string()), ("age", pa.int64())])
    assert {"tags", "country"} <= set(schema.names)


def test_ingest_schema_prints_the_schema_and_an_athena_ddl(dataset):
    ingest = str(Path(sys.executable).with_name("ingest"))
    result = subprocess.run([ingest, "schema", str(dataset)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "created_at: timestamp[us, tz=UTC]" in result.stdout
    assert "  `created_at` timestamp,\n" in result.stdout
    assert "  `user` struct<name:string,age:bigint>,\n" in result.stdout
    assert "PARTITIONED BY (`year` string, `month` string, `day` string)" in result.stdout
    missing = subprocess.run([ingest, "schema", str(dataset / "nothing")], capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"ingest: error: no Parquet files under {dataset / 'nothing'}"]


def test_pyarrow_dataset(dataset):
    import pyarrow.dataset as ds
    from parquet_ingestor_parquet.readback import dataset_schema

    table = ds.dataset(dataset, format="parquet", partitioning="hive").to_table()
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    _check(table.column("id").to_pylist(), table.column("created_at").to_pylist())
    # with the dataset schema (the newest file's), the columns added later are there too
    full = ds.dataset(dataset, format="parquet", partitioning="hive",
                      schema=dataset_schema(str(dataset))).to_table()
    assert full.filter(pa.compute.equal(full.column("id"), 89)).column("country").to_pylist() \
        == ["DE"]


def test_polars_scan_parquet(dataset):
    pl = pytest.importorskip("polars")
    from parquet_ingestor_parquet.readback import dataset_schema

    schema = pl.from_arrow(dataset_schema(str(dataset)).empty_table()).schema  # as reading.md
    frame = pl.scan_parquet(f"{dataset}/**/*.parquet", hive_partitioning=True, schema=schema,
                            missing_columns="insert",
                            cast_options=pl.ScanCastOptions(missing_struct_fields="insert")
                            ).collect()
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC")
    _check(frame["id"].to_list(), frame["created_at"].to_list())
    assert frame.filter(pl.col("id") == 45)["user"].to_list() == [{"name": "u45", "age": 45}]


@pytest.mark.parametrize("union_by_name", [False, True])
def test_duckdb(dataset, union_by_name):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    source = (f"read_parquet('{dataset}/**/*.parquet', hive_partitioning = true, "
              f"union_by_name = {str(union_by_name).lower()})")
    types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["amount"] == "BIGINT" and types["id"] == "BIGINT"
    rows = con.execute(f"SELECT id, created_at FROM {source}").fetchall()
    _check([r[0] for r in rows], [r[1] for r in rows])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_spark_merge_schema(dataset):
    if shutil.which("java") is None:
        pytest.skip("no java (CI installs openjdk-17-jre-headless)")
    pytest.importorskip("pyspark")
    script = f"""
import json
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("readers")
         .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
         .config("spark.driver.memory", "512m").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = spark.read.option("mergeSchema", "true").parquet({str(dataset)!r})
rows = [(r["id"], r["created_at"].isoformat()) for r in df.select("id", "created_at").collect()]
print("RESULT " + json.dumps({{"types": dict(df.dtypes), "rows": rows}}))
spark.stop()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["types"]["created_at"] == "timestamp"
    assert result["types"]["user"] == "struct<name:string,age:bigint>"
    ids = [r[0] for r in result["rows"]]
    # Spark gives session-time (UTC here) local datetimes
    _check(ids, [dt.datetime.fromisoformat(r[1]) for r in result["rows"]])


@pytest.mark.aws
def test_a_restart_on_s3_keeps_the_dataset_schema(tmp_path, aws_env, moto_endpoint, unique_name):
    """The schema is read back from the newest object under s3://bucket/prefix/ at start."""
    import boto3
    import pyarrow.parquet as pq

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=unique_name)
    ingest = str(Path(sys.executable).with_name("ingest"))
    runs = [[{"id": 1, "n": 5, "at": "2024-05-01T01:02:03Z"}],
            [{"id": 2, "n": 1.5, "at": "2024-05-01T01:02:03.5Z"},
             {"id": 3, "n": 7, "at": "2024-05-01T01:02:04Z"}]]
    for n, rows in enumerate(runs):
        source = tmp_path / f"run{n}.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in rows))
        done = subprocess.run(
            [ingest, "--source", "file", "--source-opt", f"path={source}", "--sink", "s3",
             "--sink-opt", f"bucket={unique_name}", "--sink-opt", "prefix=events/",
             "--error-sink", "file", "--error-sink-opt", f"path={tmp_path / 'errors'}"],
            capture_output=True, text=True, timeout=120, env=aws_env)
        assert done.returncode == 0, done.stderr
    assert "dataset schema read back from s3://" in done.stderr
    errors = [json.loads(x) for f in (tmp_path / "errors").rglob("*.jsonl")
              for x in f.read_text().splitlines()]
    assert [json.loads(e["body"])["id"] for e in errors] == [2]
    assert errors[0]["reason"].startswith("field 'n': float value 1.5 cannot be stored in the "
                                          "column's type int64")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=unique_name)["Contents"]]
    import io

    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=unique_name, Key=k)["Body"].read()))
              for k in keys]
    assert {str(t.schema.field("n").type) for t in tables} == {"int64"}
    assert {str(t.schema.field("at").type) for t in tables} == {"timestamp[us, tz=UTC]"}
