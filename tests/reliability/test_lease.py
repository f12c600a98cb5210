"""Leases: a batch held far longer than the visibility timeout is never delivered twice."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
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
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]


@pytest.mark.timeout(120)
def test_batch_age_far_beyond_visibility_timeout_gives_no_duplicates(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    events = make_events(6_000, seed=11)
    bodies = pack(events, 50)  # 120 messages
    assert send(sqs, url, bodies[:100]) == 100

    ingest = Ingest([
        *sqs_args(url, visibility=3, pollers=1), *s3_args(unique_name),
        "--batch-max-age", "20s", "--batch-max-bytes", "64MiB", "--exit-when-idle", "4s",
        "--log-format", "json",
    ], env_for(aws_env), logdir)
    # A trickle keeps the run busy, so the first batch is flushed by its age (20 s = 6+ leases).
    for body in bodies[100:]:
        time.sleep(1.0)
        send(sqs, url, [body])
    run = ingest.wait(90)

    assert run.code == 0, run.stderr[-3000:]
    out = read_s3(s3, unique_name, "out/")
    assert len(out.rows) == len(events), f"{len(out.rows)} rows for {len(events)} events"
    assert sorted(out.ids) == sorted(json.loads(e)["id"] for e in events)
    assert out.duplicates() == 0
    assert_same_events(out.rows, events)
    stopped = run.stopped()
    assert stopped["received"] == 120, stopped
    assert stopped["acked"] == 120, stopped
    assert stopped["lease_extensions"] > 0, stopped  # the batch did outlive its first lease
    print("stopped:", stopped)
    assert queue_depth(sqs, url) == (0, 0)
