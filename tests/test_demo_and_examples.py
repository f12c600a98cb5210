"""The examples and ``ingest demo`` run as users run them, and their output is read back."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CLI = "from parquet_ingestor.cli import main; main()"

pytest.importorskip("parquet_ingestor_parquet")
pq = pytest.importorskip("pyarrow.parquet")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INGEST_", "AWS_"))}
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- examples/basic.py


@pytest.mark.timeout(60)
def test_basic_example(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run([sys.executable, str(EXAMPLES / "basic.py"), str(out)], clean_env(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(out.rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["hour=10", "hour=11"]  # partitioned by event time
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    rows.sort(key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [f"evt-{i:02d}" for i in range(12)]
    for i, row in enumerate(rows):
        assert row["user_id"] == 1000 + i
        assert row["amount"] == i * 1.5
        assert row["type"] == ("click" if i % 3 else "purchase")
        assert row["created_at"].hour == 10 + i // 6 and row["created_at"].minute == (i % 6) * 10
    assert "read back 12 rows; acked 12, nacked 1" in proc.stdout


# ---------------------------------------------------------------- examples/sqs_to_s3.py


def events(n: int) -> list[dict[str, Any]]:
    return [{"id": f"e{i:04d}", "created_at": f"2024-06-0{1 + i % 2}T0{i % 3}:15:00Z",
             "n": i, "tags": ["a", "b"][: i % 3]} for i in range(n)]


@pytest.mark.aws
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sqs_to_s3_example(aws_env: dict[str, str], unique_name: str, tmp_path: Path) -> None:
    import boto3

    endpoint = aws_env["AWS_ENDPOINT_URL"]
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=unique_name)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    sent = events(120)
    bodies = ["\n".join(json.dumps(e) for e in sent[i:i + 8]) for i in range(0, len(sent), 8)]
    bodies.append("definitely { not json")
    for i in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i:i + 10])])

    env = clean_env(**{k: v for k, v in aws_env.items() if k.startswith("AWS_")})
    proc = run([sys.executable, str(EXAMPLES / "sqs_to_s3.py"), "--queue-url", queue_url,
                "--bucket", unique_name, "--idle", "2s", "--batch-age", "1s"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    listed = s3.list_objects_v2(Bucket=unique_name).get("Contents", [])
    keys = sorted(o["Key"] for o in listed)
    parquet = [k for k in keys if k.startswith("events/")]
    errors = [k for k in keys if k.startswith("errors/")]
    assert parquet and all(re.match(r"events/year=2024/month=06/day=0[12]/hour=0[0-2]/", k)
                           for k in parquet)
    printed = {line.split("\t")[0] for line in proc.stdout.splitlines() if "\t" in line}
    assert printed == {f"s3://{unique_name}/{k}" for k in parquet}
    got: list[dict[str, Any]] = []
    for key in parquet:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=unique_name, Key=key)["Body"].read()))
        for row in table.to_pylist():  # each row sits in the partition of its own event time
            assert f"day={row['created_at']:%d}/hour={row['created_at']:%H}/" in key
            got.append(row)
    got.sort(key=lambda r: r["n"])
    assert len(got) == len(sent)
    for row, event in zip(got, sent, strict=True):
        assert row["id"] == event["id"] and row["n"] == event["n"]
        assert row["created_at"].isoformat().startswith(event["created_at"][:-1])
        assert list(row["tags"] or []) == event["tags"]
    rejected = [json.loads(line) for key in errors for line in
                s3.get_object(Bucket=unique_name, Key=key)["Body"].read().splitlines()]
    assert [r["body"] for r in rejected] == ["definitely { not json"]
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


# ---------------------------------------------------------------- ingest demo


@pytest.mark.aws
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ingest_demo(tmp_path: Path) -> None:
    pytest.importorskip("moto")
    proc = run([sys.executable, "-c", CLI, "demo", "--events", "600", "--per-message", "20",
                "--keep", "kept"], clean_env(), tmp_path, timeout=170)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    files = re.findall(r"^\s+(s3://demo-lake/events/\S+\.parquet)\s+([\d,]+) rows$", out, re.M)
    assert files, out
    total = re.search(r"total: ([\d,]+) rows, ([\d,]+) distinct event ids", out)
    assert total is not None, out
    rows, distinct = (int(g.replace(",", "")) for g in total.groups())
    assert distinct == 600
    assert rows == sum(int(n.replace(",", "")) for _, n in files) >= 600
    assert "Rejected messages went to the error sink" in out
    assert re.search(r"s3://demo-lake/errors/\S+", out)
    assert "Traceback" not in proc.stderr
    # --keep: the bucket's files are on disk, and the closing command reads them without moto
    kept = sorted(str(p.relative_to(tmp_path / "kept")) for p in (tmp_path / "kept").rglob("*.parquet"))
    assert kept == sorted(key.removeprefix("s3://demo-lake/") for key, _ in files)
    assert list((tmp_path / "kept" / "errors").rglob("*.jsonl"))
    lines = out.rstrip().splitlines()
    assert lines[-2] == "Read them back, with the emulator gone:"
    shown = subprocess.run(lines[-1].strip(), shell=True, cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, env=clean_env())
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"{rows} rows"
    assert len(shown.stdout.splitlines()) == 4 and "'created_at'" in shown.stdout


def test_ingest_demo_help_names_keep_and_the_extra() -> None:
    from click.testing import CliRunner
    from parquet_ingestor.cli import cli

    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--keep DIR" in text and "pip install 'parquet-ingestor[demo]'" in text
