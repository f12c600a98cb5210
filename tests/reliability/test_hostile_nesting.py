"""Hostile nesting on SQS (issue 17): objects nested 1,000 and 10,000 deep between good
messages, with an error sink. Before, 1,000 deep raised RecursionError and sent the whole batch
to the DLQ, and 10,000 deep killed the process with SIGSEGV. Now each goes to the error sink
alone with its reason, and every good row is written once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import (
    env_for,
    error_records,
    make_queue,
    read_s3,
    run_ingest,
    s3_args,
    send,
    sqs_args,
    wait_queue_empty,
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]


@pytest.mark.timeout(120)
def test_deep_nesting_goes_to_the_error_sink_alone(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=5)
    good = [json.dumps({"id": f"good-{i}", "n": i}).encode() for i in range(50)]
    bad = {depth: b'{"x":' * depth + b"1" + b"}" * depth for depth in (1_000, 10_000)}
    bodies = [*good[:25], bad[1_000], *good[25:40], bad[10_000], *good[40:]]
    assert send(sqs, url, bodies) == len(bodies)
    run = run_ingest([
        *sqs_args(url, visibility=5, pollers=1), *s3_args(unique_name),
        *s3_args(unique_name, "errors/", flag="--error-sink"),
        "--batch-max-age", "1s", "--exit-when-idle", "4s", "--log-format", "json",
    ], env_for(aws_env), logdir, timeout=90)

    assert run.code == 0, run.stderr[-3000:]
    rows = read_s3(s3, unique_name, "out/").rows
    assert sorted(r["id"] for r in rows) == sorted(f"good-{i}" for i in range(50))
    assert sorted(r["n"] for r in rows) == list(range(50))
    errors = error_records(read_s3(s3, unique_name, "errors/"))
    assert sorted(e["body"] for e in errors) == sorted(b.decode() for b in bad.values())
    assert all("nested deeper than" in e["reason"] for e in errors), [e["reason"] for e in errors]
    assert wait_queue_empty(sqs, url) == (0, 0)
