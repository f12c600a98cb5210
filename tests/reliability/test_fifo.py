"""FIFO queues: with one flush worker, each message group's events are written in the order
they were sent (within a file by row order, across files by write order)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from reliability_kit import (
    env_for,
    make_events,
    make_queue,
    pack,
    read_s3,
    run_ingest,
    s3_args,
    send,
    sqs_args,
    wait_queue_empty,
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]
GROUPS, PER_GROUP, PER_MESSAGE = 4, 30, 10


@pytest.mark.timeout(120)
def test_fifo_group_order_is_kept_with_one_worker(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=5, fifo=True)
    events = make_events(GROUPS * PER_GROUP * PER_MESSAGE, seed=51)
    sent: dict[str, list[str]] = {}
    bodies = pack(events, PER_MESSAGE)
    for g in range(GROUPS):
        mine = bodies[g::GROUPS]
        sent[f"g{g}"] = [json.loads(line)["id"] for body in mine for line in body.splitlines()]
        assert send(sqs, url, mine, group=f"g{g}") == PER_GROUP
    run = run_ingest([
        *sqs_args(url, visibility=5), *s3_args(unique_name), "--workers", "1",
        "--batch-max-age", "1s", "--exit-when-idle", "4s", "--log-format", "json",
        "--key-template", "%Y/{unix_ns}-{random}.{ext}",
    ], env_for(aws_env), logdir, timeout=100)
    assert run.code == 0, run.stderr[-3000:]
    out = read_s3(s3, unique_name, "out/")
    # Keys carry the write time in ns: sort files by it, then rows keep their order.
    order = sorted(out.files, key=lambda k: int(k.rsplit("/", 1)[1].split("-")[0]))
    ids_in_write_order: list[str] = []
    for key in order:
        data = s3.get_object(Bucket=unique_name, Key=key)["Body"].read()
        ids_in_write_order += pq.read_table(io.BytesIO(data), columns=["id"]).column(
            "id").to_pylist()
    group_of = {i: g for g, ids in sent.items() for i in ids}
    for g, ids in sent.items():
        assert [i for i in ids_in_write_order if group_of[i] == g] == ids, g
    assert wait_queue_empty(sqs, url) == (0, 0)
    print(f"\nfifo: {GROUPS} groups x {PER_GROUP} messages, {len(out.files)} files, "
          f"{run.stopped()['batches']} batches")
