"""The ``ingest`` command with ``--sink s3``, as a user runs it (endpoint from AWS_ENDPOINT_URL)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.aws, pytest.mark.timeout(120)]


def ingest_command() -> list[str]:
    exe = shutil.which("ingest", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "parquet_ingestor.cli"]


def run_ingest(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ingest_command(), *args], env=env, capture_output=True, text=True,
                          timeout=90)


def test_cli_writes_parquet_to_s3(tmp_path, aws_env, store):
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"id": i, "name": f"n{i}", "score": i / 2} for i in range(500)]
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in rows))

    done = run_ingest(["--source", "file", "--source-opt", f"path={events}",
                       "--encoder", "parquet", "--sink", "s3",
                       "--sink-opt", f"bucket={store.bucket}", "--sink-opt", "prefix=events/",
                       "--sink-opt", "tags=team=data,env=test",
                       "--sink-opt", "metadata=pipeline=cli",
                       "--exit-when-idle", "1s"], aws_env)
    assert done.returncode == 0, done.stderr

    keys = store.object_keys()
    assert keys and all(k.startswith("events/") and k.endswith(".parquet") for k in keys)
    assert "//" not in "".join(keys)
    read: list[dict[str, object]] = []
    for key in keys:
        read.extend(pq.read_table(io.BytesIO(store.read(key))).to_pylist())
        head = store.head(key)
        assert head["ContentType"] == "application/vnd.apache.parquet"
        assert head["Metadata"]["pipeline"] == "cli"
        tagging = store.s3.get_object_tagging(Bucket=store.bucket, Key=key)["TagSet"]
        assert {t["Key"]: t["Value"] for t in tagging} == {"team": "data", "env": "test"}
    assert sorted(read, key=lambda r: r["id"]) == rows
    assert store.pending_uploads() == []


def test_cli_missing_bucket_is_one_line_exit_2(tmp_path, aws_env, unique_name):
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": 1}\n')
    done = run_ingest(["--source", "file", "--source-opt", f"path={events}", "--sink", "s3",
                       "--sink-opt", f"bucket={unique_name}", "--exit-when-idle", "1s"], aws_env)
    assert done.returncode == 2
    expected = f"sink 's3' option 'bucket': bucket '{unique_name}' does not exist"
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr


def test_validate_reports_a_missing_bucket_and_accepts_a_real_one(tmp_path, aws_env, store):
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": 1}\n')
    base = ["--validate", "--source", "file", "--source-opt", f"path={events}", "--sink", "s3"]
    missing = run_ingest([*base, "--sink-opt", "bucket=no-such-bucket-here"], aws_env)
    assert missing.returncode == 2, missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "no-such-bucket-here" in missing.stderr
    ok = run_ingest([*base, "--sink-opt", f"bucket={store.bucket}"], aws_env)
    assert ok.returncode == 0 and "configuration OK" in ok.stdout, ok.stderr
