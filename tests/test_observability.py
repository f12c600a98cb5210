"""What an operator sees: JSON logs, what the logs never contain (payloads, credentials),
Prometheus metrics and /healthz, and the summary table on a terminal only."""

from __future__ import annotations

import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from parquet_ingestor.exporter import healthy, start_exporter
from parquet_ingestor.logs import JsonFormatter, TextFormatter, reason_summary
from parquet_ingestor.metrics import Metrics
from parquet_ingestor.testing import free_port, wait_for

CLI = "from parquet_ingestor.cli import main; main()"
PAYLOAD = "PAYLOADMARK"  # appears only inside message bodies


def ingest_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(extra)
    return env


def ingest(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=cwd, env=env or ingest_env(),
                          capture_output=True, text=True, timeout=timeout)


def written_files(root: Path) -> list[Path]:
    """Committed output files (the file sink's temporaries start with a dot)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def jsonl_lines(files: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for f in files for line in f.read_bytes().splitlines() if line]


def write_events(path: Path, n: int, bad: list[str] = ()) -> None:  # type: ignore[assignment]
    rows = [json.dumps({"id": i, "ts": "2024-05-01T10:00:00Z", "note": f"{PAYLOAD}-{i}"})
            for i in range(n)]
    path.write_text("\n".join(rows + list(bad)) + "\n")


# ---------------------------------------------------------------- JSON logs


def test_json_logs_one_object_per_line_with_file_fields(tmp_path: Path) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out"
    write_events(src, 53)
    proc = ingest("--source", "file", "--source-opt", f"path={src}", "--sink", "file",
                  "--sink-opt", f"path={out}", "--encoder", "jsonl", "--batch-max-records", "10",
                  "--log-format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is JSON
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    wrote = [r for r in records if r.get("event") == "file_written"]
    for r in wrote:
        assert r["level"] == "INFO"
        assert r["message"] == f"wrote {r['url']}"
        assert isinstance(r["rows"], int) and isinstance(r["bytes"], int)
        assert isinstance(r["messages"], int) and isinstance(r["duration"], float | int)
    assert sum(r["rows"] for r in wrote) == 53
    files = written_files(out)
    assert sorted(r["url"] for r in wrote) == sorted(f.as_uri() for f in files)
    by_url = {f.as_uri(): f for f in files}
    for r in wrote:  # the logged numbers are the file's
        assert r["bytes"] == by_url[r["url"]].stat().st_size
        assert r["rows"] == len(by_url[r["url"]].read_bytes().splitlines())
    stopped = [r for r in records if r.get("event") == "stopped"]
    assert len(stopped) == 1 and stopped[0]["rows_written"] == 53


# ---------------------------------------------------------------- payloads stay out


BAD = [
    f'{{"id": 900, "ts": "{PAYLOAD}-ts", "note": "x"}}',  # pyarrow quotes the bad value
    f'{{"id": 901, "ts": "2024-05-01T10:00:00Z", "note": "{PAYLOAD}-broken" junk',
    f'["{PAYLOAD}-array"]',
    f"plain text {PAYLOAD}-text",
]


@pytest.mark.parametrize("encoder", ["parquet", "jsonl"])
def test_payloads_only_at_debug(tmp_path: Path, encoder: str) -> None:
    pytest.importorskip("parquet_ingestor_parquet")
    src = tmp_path / "in.jsonl"
    write_events(src, 20, BAD)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"id": "int64", "ts": "timestamp[ms]", "note": "string"}))
    extra = ["--encoder-opt", f"schema={schema}"] if encoder == "parquet" else []

    def run(level: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        out = tmp_path / f"out-{level}"
        proc = ingest("--source", "file", "--source-opt", f"path={src}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--error-sink", "file",
                      "--error-sink-opt", f"path={tmp_path / f'errors-{level}'}",
                      "--encoder", encoder, *extra, "--log-level", level, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc, out

    info, out = run("INFO")
    assert PAYLOAD not in info.stderr + info.stdout
    bad = BAD if encoder == "parquet" else BAD[1:]  # without a schema "ts" is any string
    assert info.stderr.count("WARNING rejected message ") == len(bad)  # rejections reported ...
    wrote = [line for line in info.stderr.splitlines() if " INFO " in line and f" wrote {out}/" in line]
    assert len(wrote) == len(written_files(out)) > 0  # ... and every file written, at INFO
    errors = jsonl_lines(written_files(tmp_path / "errors-INFO"))
    assert sorted(e["body"] for e in errors) == sorted(bad)  # the bodies went to the error sink

    debug, _ = run("DEBUG")
    if encoder == "parquet":  # the full reason, quoting the value, is there at DEBUG
        assert f"{PAYLOAD}-ts" in debug.stderr


def test_reason_summary_drops_what_follows_the_colon() -> None:
    assert reason_summary("body is not a JSON object") == "body is not a JSON object"
    assert reason_summary("Failed to convert JSON to timestamp[ms], couldn't parse:SECRET") == (
        "Failed to convert JSON to timestamp[ms], couldn't parse")
    assert "SECRET" not in reason_summary("field 'ts': cannot read 'SECRET' as a timestamp")


# ---------------------------------------------------------------- credentials never logged

LEAKY = {
    "AWS_ACCESS_KEY_ID": "AKIALEAKCHECK7777777",
    "AWS_SECRET_ACCESS_KEY": "leak-check-secret-QWERTY1234567890abcdef",
    "AWS_SESSION_TOKEN": "leak-check-session-token-ZXCVBNM0987654321",
}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_formatters_mask_credentials(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in LEAKY.items():
        monkeypatch.setenv(key, value)
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    record = logging.LogRecord("t", logging.DEBUG, __file__, 1, "key %s url %s", (
        LEAKY["AWS_SECRET_ACCESS_KEY"],
        "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123&X-Amz-Security-Token=tok987"), None)
    record.token = LEAKY["AWS_SESSION_TOKEN"]
    record.key_id = LEAKY["AWS_ACCESS_KEY_ID"]
    text = formatter.format(record)
    for value in (*LEAKY.values(), "abc123", "tok987"):
        assert value not in text
    assert "****" in text


@pytest.mark.aws
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_credentials_never_in_output_at_debug(aws_env: dict[str, str], unique_name: str,
                                              tmp_path: Path) -> None:
    import boto3

    env = {**ingest_env(), **aws_env, **LEAKY}
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=unique_name)
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    for i in range(0, 30, 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(j), "MessageBody": json.dumps({"id": j, "v": "x"})}
            for j in range(i, i + 10)])
    sqs.send_message(QueueUrl=queue_url, MessageBody="not json")
    proc = ingest("--source", "sqs", "--source-opt", f"queue_url={queue_url}",
                  "--source-opt", "wait_time=1s", "--sink", "s3", "--sink-opt",
                  f"bucket={unique_name}", "--sink-opt", "prefix=ok/", "--error-sink", "s3",
                  "--error-sink-opt", f"bucket={unique_name}", "--error-sink-opt", "prefix=err/",
                  "--encoder", "jsonl", "--batch-max-age", "1s", "--exit-when-idle", "2s",
                  "--log-level", "DEBUG", cwd=tmp_path, env=env)
    # and a failing run: the errors printed must not carry credentials either
    failed = ingest("--source", "sqs", "--source-opt", f"queue_url={queue_url}-missing",
                    "--sink", "s3", "--sink-opt", f"bucket={unique_name}-missing",
                    "--log-level", "DEBUG", "--log-format", "json", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert failed.returncode != 0
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=unique_name).get("Contents", [])]
    assert any(k.startswith("ok/") for k in keys) and any(k.startswith("err/") for k in keys)
    for output in (proc.stdout, proc.stderr, failed.stdout, failed.stderr):
        for value in LEAKY.values():
            assert value not in output


# ---------------------------------------------------------------- metrics and /healthz


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.aws
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_metrics_match_the_files_written(aws_env: dict[str, str], unique_name: str,
                                         tmp_path: Path) -> None:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=unique_name)["QueueUrl"]
    for i in range(0, 35, 5):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(j), "MessageBody": json.dumps({"id": j})} for j in range(i, i + 5)])
    out, port = tmp_path / "out", free_port()
    # the queue stays open and the batch age is long: the run only stops on SIGTERM
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "--source", "sqs", "--source-opt", f"queue_url={queue_url}",
         "--source-opt", "wait_time=1s", "--sink", "file", "--sink-opt", f"path={out}",
         "--encoder", "jsonl", "--batch-max-records", "10", "--batch-max-age", "1h",
         "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**ingest_env(), **aws_env},
        cwd=tmp_path)
    try:
        def settled() -> bool:
            # "acked" is counted before the batch leaves the in-flight gauge, and the last 5
            # messages may still be on their way in: wait for all three, not for acked alone
            try:
                values = scrape(port)
            except OSError:
                return False
            return (values.get("ingest_acked_total", 0) >= 30
                    and values.get("ingest_received_total", 0) >= 35
                    and values.get("ingest_in_flight_messages", 35) <= 5)

        assert wait_for(settled, 60), "three batches of 10 were not acknowledged"
        metrics = scrape(port)  # 5 messages still wait in the open batch
        files = written_files(out)
        assert metrics["ingest_files_written_total"] == len(files)
        assert metrics["ingest_rows_written_total"] == len(jsonl_lines(files)) == 30
        assert metrics["ingest_messages_written_total"] == 30
        assert metrics["ingest_acked_total"] == 30
        assert metrics["ingest_received_total"] == 35
        assert metrics["ingest_in_flight_messages"] == 5
        assert metrics["ingest_bytes_written_total"] == sum(f.stat().st_size for f in files)
        assert metrics["ingest_up"] == 1
        assert get_status(f"http://127.0.0.1:{port}/healthz") == 200
        assert get_status(f"http://127.0.0.1:{port}/nope") == 404
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert sorted(r["id"] for r in jsonl_lines(written_files(out))) == list(range(35))


def fake_pipeline(in_flight: int, silent_for: float, max_age: float = 60.0) -> Any:
    metrics = Metrics()
    metrics.add_in_flight(in_flight, in_flight * 100)
    metrics.last_progress = time.monotonic() - silent_for
    return SimpleNamespace(metrics=metrics,
                           settings=SimpleNamespace(batch=SimpleNamespace(max_age=max_age)))


def test_healthz_turns_503_when_stuck() -> None:
    stuck = fake_pipeline(in_flight=7, silent_for=3600)
    busy = fake_pipeline(in_flight=7, silent_for=1)
    idle = fake_pipeline(in_flight=0, silent_for=3600)  # nothing to do is not stuck
    assert not healthy(stuck)[0] and healthy(busy)[0] and healthy(idle)[0]
    for pipeline, code, up in ((stuck, 503, 0), (busy, 200, 1), (idle, 200, 1)):
        port = free_port()
        server = start_exporter(pipeline, port)
        try:
            assert get_status(f"http://127.0.0.1:{port}/healthz") == code
            assert scrape(port)["ingest_up"] == up
        finally:
            server.shutdown()
            server.server_close()


def test_stuck_threshold_follows_batch_age() -> None:
    # a batch may legitimately take batch_max_age to fill: twice that is still healthy
    assert healthy(fake_pipeline(3, silent_for=500, max_age=300))[0]
    assert not healthy(fake_pipeline(3, silent_for=700, max_age=300))[0]


# ---------------------------------------------------------------- summary on a terminal only


def read_pty(fd: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> bytes:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks)


def test_summary_table_on_a_terminal_not_in_a_pipe(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    write_events(src, 12)
    args = [sys.executable, "-c", CLI, "--source", "file", "--source-opt", f"path={src}",
            "--sink", "file", "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl"]
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                env=ingest_env(), cwd=tmp_path)
        os.close(slave)
        shown = read_pty(master, proc).decode(errors="replace")
        assert proc.wait(timeout=30) == 0, shown
    finally:
        os.close(master)
    assert "Summary" in shown
    table = shown[shown.index("Summary"):]
    assert "rows" in table and " 12" in table and "drained" in table

    piped = subprocess.run(args, capture_output=True, text=True, env=ingest_env(), cwd=tmp_path,
                           timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert "Summary" not in piped.stderr + piped.stdout
    assert "\x1b[" not in piped.stderr  # no status line redraws either


def test_components_own_counters_are_exported() -> None:
    pipeline = fake_pipeline(in_flight=0, silent_for=0)
    pipeline.metrics.incr("iceberg_commits", 3)
    port = free_port()
    server = start_exporter(pipeline, port)
    try:
        scraped = scrape(port)
        assert scraped["ingest_iceberg_commits_total"] == 3
        assert "ingest_uptime_seconds_total" not in scraped
    finally:
        server.shutdown()
        server.server_close()
