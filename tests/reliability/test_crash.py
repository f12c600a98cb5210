"""Crashes: SIGKILL at random moments loses nothing; the queue ends empty."""

from __future__ import annotations

import json
import random
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
    read_s3,
    s3_args,
    send,
    sqs_args,
    wait_queue_empty,
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]
MESSAGES, PER_MESSAGE, KILLS = 300, 100, 5


@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_loses_nothing(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    events = make_events(MESSAGES * PER_MESSAGE, seed=5)
    assert send(sqs, url, pack(events, PER_MESSAGE)) == MESSAGES
    args = [*sqs_args(url, visibility=3), *s3_args(unique_name),
            "--batch-max-bytes", "1MiB", "--batch-max-age", "1s", "--workers", "2",
            "--log-format", "json"]
    env = env_for(aws_env)
    rng = random.Random(1234)
    kills = []
    for _ in range(KILLS):
        ingest = Ingest(args, env, logdir)
        # Start-up (imports, bucket check) takes a while: the clock starts at the first write.
        deadline = time.monotonic() + 60
        while _files_written(ingest) == 0 and time.monotonic() < deadline:
            assert ingest.proc.poll() is None, ingest.stderr_so_far()[-2000:]
            time.sleep(0.05)
        moment = rng.uniform(0.0, 1.0)
        time.sleep(moment)
        assert ingest.proc.poll() is None, ingest.stderr_so_far()[-2000:]
        ingest.kill()
        kills.append((round(moment, 2), _files_written(ingest)))

    final = Ingest([*args, "--exit-when-idle", "6s"], env, logdir).wait(150)
    assert final.code == 0, final.stderr[-3000:]

    out = read_s3(s3, unique_name, "out/")
    expected = {json.loads(e)["id"] for e in events}
    assert set(out.ids) == expected, f"lost {len(expected - set(out.ids))} events"
    assert_same_events(out.rows, events)
    messages_in_files = sum(int(meta["ingest.messages"]) for meta in out.files.values())
    assert messages_in_files >= MESSAGES
    assert wait_queue_empty(sqs, url, timeout=10) == (0, 0)
    print(f"\ncrash: {MESSAGES} messages, {len(events)} events, kills (s, files so far) {kills}, "
          f"{len(out.files)} files, duplicate rows {out.duplicates()}, "
          f"messages written again {messages_in_files - MESSAGES}, lost 0")


def _files_written(ingest: Ingest) -> int:
    return ingest.stderr_so_far().count('"event": "file_written"')
