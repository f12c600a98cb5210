"""SIGKILL with files open (issue 12, files that outlive a batch): nothing acked, no object
visible, and nothing lost after a restart."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.testing import free_port
from reliability_kit import (
    Ingest,
    assert_same_events,
    env_for,
    make_events,
    make_queue,
    pack,
    queue_depth,
    read_s3,
    s3_args,
    send,
    sqs_args,
    wait_queue_empty,
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]
MESSAGES, PER_MESSAGE = 40, 50


def metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else None


@pytest.mark.timeout(180)
def test_sigkill_with_files_open_acks_nothing_shows_nothing_loses_nothing(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    events = make_events(MESSAGES * PER_MESSAGE, seed=12)
    assert send(sqs, url, pack(events, PER_MESSAGE)) == MESSAGES
    port = free_port()
    args = [*sqs_args(url, visibility=3, pollers=1), *s3_args(unique_name),
            "--batch-max-records", "10", "--batch-max-age", "0.5s",
            "--key-template", "%Y/%m/%d/{unix_ns}-{random}.{ext}",
            "--target-file-size", "64MiB", "--max-file-age", "0", "--log-format", "json"]
    env = env_for(aws_env)
    ingest = Ingest([*args, "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
                    env, logdir)
    # every message received and flushed into the open file: rows written, nothing committed
    deadline = time.monotonic() + 90
    while not (metric(port, "ingest_received_total") == MESSAGES
               and metric(port, "ingest_batches_total") == MESSAGES / 10
               and metric(port, "ingest_in_flight_messages") == 0):
        assert ingest.proc.poll() is None, ingest.stderr_so_far()[-2000:]
        assert time.monotonic() < deadline, ingest.stderr_so_far()[-2000:]
        time.sleep(0.05)
    # past the 3 s visibility timeout: still held (leases extended), nothing acked or visible
    held_since = time.monotonic()
    while time.monotonic() - held_since < 4:
        assert metric(port, "ingest_acked_total") == 0
        time.sleep(0.2)
    assert queue_depth(sqs, url) == (0, MESSAGES)
    assert read_s3(s3, unique_name, "out/").files == {}
    ingest.kill()

    assert read_s3(s3, unique_name, "out/").files == {}  # no partial object, ever
    final = Ingest([*args, "--exit-when-idle", "6s"], env, logdir).wait(150)
    assert final.code == 0, final.stderr[-3000:]
    out = read_s3(s3, unique_name, "out/")
    assert_same_events(out.rows, events)  # every event exactly once
    assert len(out.files) == 1  # the restart's one file, collecting every batch
    assert wait_queue_empty(sqs, url) == (0, 0)
