"""SQS edge cases of issue #17: a queue deleted mid-run, one retry budget per operation, and a
message received again while it is still in flight in this process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import (
    SQS_DELETE,
    FaultProxy,
    Ingest,
    env_for,
    make_events,
    make_queue,
    pack,
    read_s3,
    s3_args,
    send,
    sqs_args,
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]


def _until(predicate: Any, ingest: Ingest, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert ingest.proc.poll() is None, ingest.stderr_so_far()[-3000:]
        assert time.monotonic() < deadline, what + "\n" + ingest.stderr_so_far()[-3000:]
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_a_deleted_queue_stops_the_run_with_one_line(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name)
    assert send(sqs, url, pack(make_events(50, seed=51), 10)) == 5
    ingest = Ingest([*sqs_args(url, pollers=1), *s3_args(unique_name),
                     "--batch-max-age", "1s"], env_for(aws_env), logdir)
    _until(lambda: len(read_s3(s3, unique_name, "out/").ids) == 50, ingest, what="not written")
    sqs.delete_queue(QueueUrl=url)
    run = ingest.wait(60)  # before: polled the missing queue for ever
    assert run.code == 2, run.stderr[-3000:]
    assert "no longer exists" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.timeout(180)
def test_deletes_retry_in_one_layer_only(
    aws: tuple[Any, Any], aws_env: dict[str, str], moto_endpoint: str, unique_name: str,
    logdir: Path,
) -> None:
    """--ack-attempts 2 against a dead DeleteMessageBatch: exactly 2 calls for a batch of 10
    (before: the client's 5 x the source's 4 x the pipeline's tries)."""
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=30)
    assert send(sqs, url, pack(make_events(100, seed=52), 10)) == 10
    with FaultProxy(moto_endpoint) as proxy:
        proxy.outage(SQS_DELETE, 600)
        ingest = Ingest([*sqs_args(url, visibility=30, pollers=1),
                         "--source-opt", "retry_delay=60s", *s3_args(unique_name),
                         "--batch-max-records", "10", "--batch-max-age", "1h",
                         "--ack-attempts", "2", "--ack-base-delay", "100ms"],
                        env_for(aws_env, proxy.url), logdir)
        _until(lambda: "could not acknowledge" in ingest.stderr_so_far(), ingest, 120,
               "the ack never gave up")
        calls = proxy.seen[SQS_DELETE]
        ingest.kill()
    assert calls == 2, f"{calls} DeleteMessageBatch calls for one batch with --ack-attempts 2"


@pytest.mark.timeout(180)
def test_a_message_received_again_while_in_flight_is_written_once(
    aws: tuple[Any, Any], aws_env: dict[str, str], moto_endpoint: str, unique_name: str,
    logdir: Path,
) -> None:
    """Leases lapse while the batch is held (extensions fail for a while): SQS hands the same
    messages out again to this very process. They must be written once, and the lapse
    counted."""
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=2)
    events = make_events(200, seed=53)
    assert send(sqs, url, pack(events, 10)) == 20
    with FaultProxy(moto_endpoint) as proxy:
        ingest = Ingest([*sqs_args(url, visibility=2, pollers=1), *s3_args(unique_name),
                         "--batch-max-age", "12s", "--log-format", "json"],
                        env_for(aws_env, proxy.url), logdir)
        _until(lambda: proxy.seen[SQS_DELETE] == 0 and proxy.seen["sqs_receive"] >= 2,
               ingest, what="never polled")
        proxy.outage("sqs_other", 5)  # ChangeMessageVisibility fails: the leases lapse
        _until(lambda: "received again while still in flight" in ingest.stderr_so_far()
               or read_s3(s3, unique_name, "out/").ids, ingest, 60, "no lapse, no write")
        _until(lambda: len(set(read_s3(s3, unique_name, "out/").ids)) == 200, ingest, 90,
               "not everything written")
        ingest.signal(15)
        run = ingest.wait(60)
    assert run.code == 0, run.stderr[-3000:]
    out = read_s3(s3, unique_name, "out/")
    assert out.duplicates() == 0, f"{out.duplicates()} rows written twice"
    assert run.stopped().get("leases_lost", 0) >= 1
