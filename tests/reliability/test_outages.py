"""Outages: 500s on a share of S3 writes, SQS deletes and receives, plus windows where all of
one kind fail. Nothing is lost, the process stays up and exits 0 when idle, and it counts."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import (
    KINDS,
    S3_WRITE,
    SQS_DELETE,
    SQS_RECEIVE,
    FaultProxy,
    Ingest,
    assert_same_events,
    env_for,
    make_events,
    make_queue,
    pack,
    read_s3,
    s3_args,
    send,
    sqs_args,
    wait_queue_empty,
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]
MESSAGES, PER_MESSAGE = 200, 100
OUTAGE = 5.0  # seconds during which every request of one kind fails


@pytest.mark.timeout(240)
def test_faults_and_outages_lose_nothing(
    aws: tuple[Any, Any], aws_env: dict[str, str], moto_endpoint: str, unique_name: str,
    logdir: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    events = make_events(MESSAGES * PER_MESSAGE, seed=9)
    assert send(sqs, url, pack(events, PER_MESSAGE)) == MESSAGES

    rates = {S3_WRITE: 0.2, SQS_DELETE: 0.2, SQS_RECEIVE: 0.2}
    with FaultProxy(moto_endpoint, rates, seed=42, after_rate=float(os.environ.get("REL_AFTER_RATE", "0.25"))) as proxy:
        ingest = Ingest([
            # Few retries, so that an outage outlasts the whole retry chain of some writes.
            *sqs_args(url, visibility=3), *s3_args(unique_name, max_attempts="2"),
            "--batch-max-bytes", "256KiB", "--batch-max-age", "1s", "--workers", "2",
            "--write-attempts", "3", "--write-max-delay", "1s", "--ack-max-delay", "1s",
            # Idle 20 s: the process outlives the last outage window (which starts 12 s after
            # the first write) however early the work ends, so receives do meet that outage.
            "--exit-when-idle", "20s", "--log-format", "json",
        ], env_for(aws_env, proxy.url), logdir)
        windows = threading.Thread(target=_outage_windows, args=(proxy, ingest), daemon=True)
        windows.start()
        run = ingest.wait(200)
        windows.join(30)
        proxy.enabled = False
        injected = dict(proxy.injected)
        seen = dict(proxy.seen)

    assert run.code == 0, run.stderr[-3000:]
    stopped = run.stopped()
    out = read_s3(s3, unique_name, "out/")
    expected = {json.loads(e)["id"] for e in events}
    assert set(out.ids) == expected, f"lost {len(expected - set(out.ids))} events"
    assert_same_events(out.rows, events)
    assert wait_queue_empty(sqs, url, timeout=10) == (0, 0)
    for kind in KINDS:
        assert injected.get(kind, 0) > 0, (kind, injected)
        assert injected.get(kind + "_outage", 0) > 0, (kind, injected)
    # The faults show: retried or failed writes/acks are counted, receive errors are logged.
    counted = {k: stopped[k] for k in ("write_retries", "write_failures", "ack_retries",
                                       "ack_failures", "nacked")}
    assert sum(counted.values()) > 0, stopped
    receive_warnings = run.stderr.count("ReceiveMessage failed")
    assert receive_warnings > 0
    print(f"\noutages: {MESSAGES} messages, {len(events)} events, requests seen {seen}, "
          f"faults injected {injected}, counted {counted}, receive warnings "
          f"{receive_warnings}, files {len(out.files)}, duplicate rows {out.duplicates()}, "
          f"lost 0")


def _outage_windows(proxy: FaultProxy, ingest: Ingest) -> None:
    """Once the run writes, take each kind down in turn for OUTAGE seconds."""
    deadline = time.monotonic() + 60
    while "file_written" not in ingest.stderr_so_far() and time.monotonic() < deadline:
        if ingest.proc.poll() is not None:
            return
        time.sleep(0.1)
    for kind in (S3_WRITE, SQS_DELETE, SQS_RECEIVE):
        refused = proxy.injected.get(kind + "_outage", 0)
        proxy.outage(kind, OUTAGE)
        time.sleep(OUTAGE)
        # The run may have sent no request of this kind in those seconds (deletes come in
        # bursts after writes): keep that kind down until one is refused, at most 20 s more.
        extra = time.monotonic() + 20
        while (proxy.injected.get(kind + "_outage", 0) == refused and time.monotonic() < extra
               and ingest.proc.poll() is None):
            proxy.outage(kind, 0.5)
            time.sleep(0.1)
        proxy.outage(kind, 0)
        time.sleep(1.0)
