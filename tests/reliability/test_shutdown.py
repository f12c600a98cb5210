"""Shutdown: SIGTERM flushes and acks what is buffered, exit 0; a second SIGINT aborts with
exit 130 and acks nothing unwritten (those messages come back to the queue)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import (
    S3_WRITE,
    FaultProxy,
    Ingest,
    assert_same_events,
    drain,
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
MESSAGES, PER_MESSAGE = 100, 50
BUFFER_ALL = ["--batch-max-age", "10m", "--batch-max-bytes", "256MiB",
              "--batch-max-records", "0", "--log-format", "json"]


def _wait_all_received(sqs: Any, url: str, ingest: Ingest, timeout: float = 60) -> None:
    """Until every message is leased by the process (none visible, all in flight)."""
    deadline = time.monotonic() + timeout
    while queue_depth(sqs, url) != (0, MESSAGES):
        assert ingest.proc.poll() is None, ingest.stderr_so_far()[-2000:]
        assert time.monotonic() < deadline, queue_depth(sqs, url)
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_sigterm_writes_and_acks_the_buffered_batch(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    events = make_events(MESSAGES * PER_MESSAGE, seed=21)
    assert send(sqs, url, pack(events, PER_MESSAGE)) == MESSAGES
    ingest = Ingest([*sqs_args(url, visibility=3, pollers=1), *s3_args(unique_name), *BUFFER_ALL],
                    env_for(aws_env), logdir)
    _wait_all_received(sqs, url, ingest)
    time.sleep(4)  # longer than one lease: the buffered batch lives on extended leases
    assert read_s3(s3, unique_name, "out/").files == {}  # all still buffered
    ingest.signal(signal.SIGTERM)
    run = ingest.wait(60)

    assert run.code == 0, run.stderr[-3000:]
    out = read_s3(s3, unique_name, "out/")
    assert sorted(out.ids) == sorted(json.loads(e)["id"] for e in events)
    assert_same_events(out.rows, events)
    assert run.stopped()["acked"] == MESSAGES
    assert queue_depth(sqs, url) == (0, 0)  # acked before exit, not merely released


@pytest.mark.timeout(120)
def test_second_signal_aborts_without_acking_unwritten_messages(
    aws: tuple[Any, Any], aws_env: dict[str, str], moto_endpoint: str, unique_name: str,
    logdir: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    bodies = pack(make_events(MESSAGES * PER_MESSAGE, seed=22), PER_MESSAGE)
    assert send(sqs, url, bodies) == MESSAGES
    with FaultProxy(moto_endpoint) as proxy:
        ingest = Ingest([*sqs_args(url, visibility=3, pollers=1), *s3_args(unique_name), *BUFFER_ALL,
                         "--write-attempts", "50", "--write-max-delay", "1s"],
                        env_for(aws_env, proxy.url), logdir)
        _wait_all_received(sqs, url, ingest)
        proxy.outage(S3_WRITE, 120)  # S3 is down: the drain on SIGTERM cannot finish
        ingest.signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while proxy.injected[S3_WRITE] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.injected[S3_WRITE] >= 2, "the drain never tried to write"
        ingest.signal(signal.SIGTERM)  # another SIGTERM keeps draining
        time.sleep(1.2)  # later than a duplicate delivery of the first signal
        ingest.signal(signal.SIGINT)  # a second Ctrl-C aborts
        run = ingest.wait(30)

    assert run.code == 130, run.stderr[-3000:]
    assert read_s3(s3, unique_name, "out/").files == {}
    assert run.stopped()["acked"] == 0
    # Every unwritten message is back: released at once, or at the latest when its lease lapses.
    deadline = time.monotonic() + 10
    while queue_depth(sqs, url) != (MESSAGES, 0) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert queue_depth(sqs, url) == (MESSAGES, 0)
    assert sorted(drain(sqs, url)) == sorted(b.decode() for b in bodies)
    assert wait_queue_empty(sqs, url) == (0, 0)
