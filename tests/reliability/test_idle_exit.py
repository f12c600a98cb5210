"""``--exit-when-idle`` on SQS: a clean exit leaves nothing behind. Long polls still open at
exit must not take the next messages, and an idle exit right after giving messages back is not
a success."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import (
    Ingest,
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


@pytest.mark.timeout(180)
def test_after_an_idle_exit_new_messages_are_receivable_at_once(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=60)
    assert send(sqs, url, pack(make_events(100, seed=41), 10)) == 10
    # the default 20 s long polls, two pollers: both have a poll open when the run goes idle
    args = sqs_args(url, visibility=60, wait_time=20, pollers=2)
    run = Ingest([*args, *s3_args(unique_name), "--batch-max-age", "1s",
                  "--exit-when-idle", "2s"], env_for(aws_env), logdir).wait(120)
    assert run.code == 0, run.stderr[-3000:]
    assert len(read_s3(s3, unique_name, "out/").ids) == 100

    assert send(sqs, url, [f'{{"n": {i}}}' for i in range(20)]) == 20
    got: list[str] = []
    deadline = time.monotonic() + 2.0
    while len(got) < 20 and time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=30)
        got += [m["Body"] for m in response.get("Messages", [])]
    assert len(got) == 20, f"{20 - len(got)} of 20 taken by a long poll of the exited run " \
                           f"(queue: {queue_depth(sqs, url)})"


@pytest.mark.timeout(180)
def test_idle_exit_after_giving_messages_back_is_not_a_success(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
) -> None:
    """No error sink: bad messages are nacked back to the queue. With a retry delay longer than
    the idle time they are not visible again before the run goes idle: it must not exit 0."""
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=30)
    assert send(sqs, url, ['{"ok": 1}', "not json", '{"ok": 2}', "[1]"]) == 4
    args = [*sqs_args(url, visibility=30, wait_time=1, pollers=1),
            "--source-opt", "retry_delay=20s"]
    run = Ingest([*args, *s3_args(unique_name), "--batch-max-age", "1s",
                  "--exit-when-idle", "2s"], env_for(aws_env), logdir).wait(120)
    assert run.code == 1, run.stderr[-3000:]
    assert "2 messages given back to the source unwritten were not seen again" in run.stderr
