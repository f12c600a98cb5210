"""``ingest replay``: a strict schema rejects 30 of 1,000 messages into an s3:// error sink; once
the schema is fixed, replay writes each of them exactly once, and a second replay nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from parquet_ingestor.cli import cli

pytest.importorskip("smart_open")
pq = pytest.importorskip("pyarrow.parquet")

BAD = set(range(5, 5 + 33 * 30, 33))  # 30 of the 1,000 messages: their n is text


def rows_by_id(root: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(root.rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            out.setdefault(row["id"], []).append(row)
    return out


def error_records(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [json.loads(line) for o in listed if o["Key"].endswith(".jsonl")
            for line in s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().splitlines()]


@pytest.mark.aws
@pytest.mark.slow  # six runs of ingest
def test_replay_after_the_schema_is_fixed(moto_endpoint: str, unique_name: str,
                                          aws_env: dict[str, str], run_ingest: Any,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = unique_name
    s3.create_bucket(Bucket=bucket)
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"id": f"e{i}", "n": "text" if i in BAD else i}) + "\n"
                              for i in range(1000)))
    (tmp_path / "strict.json").write_text('{"id": "string", "n": "int64"}')
    (tmp_path / "fixed.json").write_text('{"id": "string", "n": "string"}')
    out = tmp_path / "out"

    def ingest(*args: str, to: Path = out) -> Any:
        done = run_ingest(*args, "--encoder", "parquet", "--sink", "file", "--sink-opt",
                          f"path={to}", env=aws_env)
        assert done.returncode == 0, done.stderr
        return done

    ingest("--source", "file", "--source-opt", f"path={events}",
           "--transformer-opt", f"schema={tmp_path / 'strict.json'}",
           "--error-sink", "file", "--error-sink-opt", f"path=s3://{bucket}/errors")
    assert set(rows_by_id(out)) == {f"e{i}" for i in range(1000) if i not in BAD}
    first = error_records(s3, bucket, "errors/")
    assert sorted(r["message_id"] for r in first) == sorted(f"{events}:{i + 1}" for i in BAD)

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    dry = CliRunner().invoke(cli, ["replay", f"s3://{bucket}/errors/", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[0] == "30 records in 1 file(s); by reason:"
    count, reason = dry.stdout.splitlines()[1].split(None, 1)
    assert count == "30" and reason == first[0]["reason"] and "int64" in reason
    assert set(rows_by_id(out)) == {f"e{i}" for i in range(1000) if i not in BAD}  # unchanged

    # still strict: rejected again, into another error sink, with the new reason and the old
    ingest("replay", f"s3://{bucket}/errors/**/*.jsonl", "--error-sink", "file",
           "--error-sink-opt", f"path=s3://{bucket}/errors-again",
           "--transformer-opt", f"schema={tmp_path / 'strict.json'}")
    again = error_records(s3, bucket, "errors-again/")
    assert sorted(r["message_id"] for r in again) == sorted(r["message_id"] for r in first)
    assert all(r["attributes"]["rejected_reason"] == first[0]["reason"] for r in again)
    [marker] = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="errors/")["Contents"]
                if o["Key"].endswith(".replayed")]
    note = json.loads(s3.get_object(Bucket=bucket, Key=marker)["Body"].read())
    assert note["records"] == 30 and note["error_sink"] == f"s3://{bucket}/errors-again/"

    # fixed: each of the 30 lands once, with its original id and the reason it was rejected
    # (in a dataset of its own: the first one's files hold n as int64)
    ingest("replay", f"s3://{bucket}/errors-again/", "--transformer-opt",
           f"schema={tmp_path / 'fixed.json'}", "--transformer-opt",
           "add_attributes=message_id,rejected_reason", to=tmp_path / "replayed")
    rows = rows_by_id(out)
    for key, more in rows_by_id(tmp_path / "replayed").items():
        rows.setdefault(key, []).extend(more)
    assert {k: len(v) for k, v in rows.items()} == {f"e{i}": 1 for i in range(1000)}
    for i in BAD:
        [row] = rows[f"e{i}"]
        assert row["n"] == "text" and row["_message_id"] == f"{events}:{i + 1}"
        assert "int64" in row["_rejected_reason"]

    # a second replay writes nothing; --dry-run says why
    files = sorted(tmp_path.rglob("*.parquet"))
    done = ingest("replay", f"s3://{bucket}/errors-again/", "--transformer-opt",
                  f"schema={tmp_path / 'fixed.json'}", to=tmp_path / "replayed")
    assert "skipping 1 file(s) already replayed" in done.stderr
    assert sorted(tmp_path.rglob("*.parquet")) == files
    dry = CliRunner().invoke(cli, ["replay", f"s3://{bucket}/errors-again/", "--dry-run"])
    assert dry.stdout.splitlines()[0] == "0 records in 0 file(s), 1 skipped (already replayed); " \
                                         "by reason:"


def test_replay_of_files_that_are_not_error_records_exits_2(tmp_path: Path,
                                                            run_ingest: Any) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "events.jsonl").write_text('{"id": 1}\n')
    for extra in (["--dry-run"], ["--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}"]):
        done = run_ingest("replay", str(tmp_path / "in"), *extra)
        assert done.returncode == 2
        assert done.stderr == (f"ingest: error: replay: {tmp_path / 'in' / 'events.jsonl'} does "
                               "not hold error-sink records (JSON lines with message_id, reason "
                               "and body)\n")
    assert not (tmp_path / "out").exists()
