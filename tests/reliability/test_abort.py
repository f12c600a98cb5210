"""Abort (a second Ctrl-C, or ``--shutdown-timeout`` running out) against a slow or failing S3:
nothing is both released back to the queue and committed, nothing unwritten is acknowledged."""

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
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]
MESSAGES, PER_MESSAGE = 100, 50


def _wait(predicate: Any, ingest: Ingest, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert ingest.proc.poll() is None, ingest.stderr_so_far()[-3000:]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _back_in_queue(sqs: Any, url: str, timeout: float = 60) -> list[str]:
    """Every message still in the queue once none is in flight (released or lapsed)."""
    deadline = time.monotonic() + timeout
    while queue_depth(sqs, url)[1] and time.monotonic() < deadline:
        time.sleep(0.3)
    return drain(sqs, url)


@pytest.mark.timeout(180)
def test_abort_with_slow_s3_never_commits_released_messages(
    aws: tuple[Any, Any], aws_env: dict[str, str], moto_endpoint: str, unique_name: str,
    logdir: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=5)
    events = make_events(MESSAGES * PER_MESSAGE, seed=31)
    assert send(sqs, url, pack(events, PER_MESSAGE)) == MESSAGES
    with FaultProxy(moto_endpoint, delays={S3_WRITE: 3.0}) as proxy:
        ingest = Ingest([*sqs_args(url, visibility=5, pollers=1), *s3_args(unique_name),
                         "--batch-max-records", "10", "--batch-max-age", "1h", "--workers", "4",
                         "--log-format", "json"], env_for(aws_env, proxy.url), logdir)
        _wait(lambda: proxy.seen[S3_WRITE] >= 4, ingest, what="no uploads started")
        ingest.signal(signal.SIGINT)  # drain...
        time.sleep(1.2)
        aborted_at = time.monotonic()
        ingest.signal(signal.SIGINT)  # ...then abort, with four uploads in flight
        run = ingest.wait(60)
        exit_seconds = time.monotonic() - aborted_at

    assert run.code == 130, run.stderr[-3000:]
    written = read_s3(s3, unique_name, "out/").ids
    released = [json.loads(line)["id"] for body in _back_in_queue(sqs, url)
                for line in body.splitlines()]
    both = set(written) & set(released)
    print(f"abort -> exit {exit_seconds:.1f}s; {len(set(written))} events written, "
          f"{len(released)} back in the queue")
    assert not both, f"{len(both)} events were committed after their messages were released"
    assert len(written) == len(set(written))
    assert set(written) | set(released) == {json.loads(e)["id"] for e in events}
    assert run.stopped()["acked"] * PER_MESSAGE == len(written)  # committed ones were acked


@pytest.mark.timeout(180)
def test_shutdown_timeout_aborts_a_drain_that_cannot_finish(
    aws: tuple[Any, Any], aws_env: dict[str, str], moto_endpoint: str, unique_name: str,
    logdir: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    bodies = pack(make_events(20 * PER_MESSAGE, seed=32), PER_MESSAGE)
    assert send(sqs, url, bodies) == 20
    with FaultProxy(moto_endpoint) as proxy:
        ingest = Ingest([*sqs_args(url, visibility=3, pollers=1), *s3_args(unique_name),
                         "--batch-max-age", "1h", "--write-attempts", "1000",
                         "--write-max-delay", "200ms", "--shutdown-timeout", "3s",
                         "--log-format", "json"], env_for(aws_env, proxy.url), logdir)
        _wait(lambda: queue_depth(sqs, url) == (0, 20), ingest, what="not all received")
        proxy.outage(S3_WRITE, 120)  # S3 is down: the drain cannot finish
        ingest.signal(signal.SIGTERM)
        ingest.signal(signal.SIGTERM)  # again, as a process group's wrapper would: still a drain
        run = ingest.wait(60)

    assert run.code == 130, run.stderr[-3000:]
    assert "--shutdown-timeout 3s expired" in run.stderr
    assert run.stopped()["acked"] == 0
    assert sorted(_back_in_queue(sqs, url)) == sorted(b.decode() for b in bodies)
