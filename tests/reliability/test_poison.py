"""Poison messages mixed into good traffic: every good record is written; every bad message
lands, raw, with its reason, in the error sink, or (without one) in the SQS dead-letter queue.
When the error sink itself is down, rejected messages are never acked."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import (
    assert_same_events,
    drain,
    env_for,
    error_records,
    make_events,
    make_queue,
    pack,
    read_s3,
    read_tree,
    run_ingest,
    s3_args,
    send,
    sqs_args,
    wait_queue_empty,
)

pytestmark = [pytest.mark.aws, pytest.mark.slow]
SCHEMA = {"id": "string", "created_at": "string", "user_id": "int64", "type": "string",
          "amount": "float64", "country": "string", "payload": "string", "tags": ["string"],
          "ctx": {"ip": "string", "ua": "string"}}
GOOD_MESSAGES, PER_MESSAGE = 60, 50
# The dead-letter tests' visibility timeout and idle exit, sized for a loaded 2-core machine.
# The lease must outlast a stall between two extensions (with maxReceiveCount=2, two lapsed
# leases would send a good message to the dead-letter queue); and the idle exit must outlast
# the lease by a margin, as a message given back while its lease is being renewed may be seen
# again only when that lease ends, and the run must receive it again before it goes idle.
VISIBILITY, IDLE = 4, "10s"


def _big_event(events: list[bytes]) -> bytes:
    """A valid event whose body is about 250 KiB (SQS's limit is 256 KiB)."""
    event = json.loads(events[0])
    event["id"] = "big-valid-event"
    event["payload"] = "x" * (250 * 1024)
    return json.dumps(event).encode()


def poison(events: list[bytes]) -> dict[str, bytes]:
    """Bad bodies by name; each must be rejected as a whole message."""
    typed = json.loads(events[0])
    good_line = events[1]
    return {
        "not_json": b"this is not JSON at all",
        "truncated": b'{"id": "broken", "created_at": ',
        "array": b"[1, 2, 3]",
        "number": b"42",
        "string": b'"just a string"',
        "null": b"null",
        "trailing_words": b'{"id": "only-a-key"} trailing words',
        "user_id_not_int": json.dumps({**typed, "id": "bad-user-id",
                                       "user_id": "not-a-number"}).encode(),
        "amount_is_object": json.dumps({**typed, "id": "bad-amount",
                                        "amount": {"value": 1}}).encode(),
        "tags_not_list": json.dumps({**typed, "id": "bad-tags", "tags": 7}).encode(),
        "big_garbage": b"<" * (250 * 1024),
        "one_bad_line_of_three": b"\n".join([good_line, b"{not json", _line(events, 2)]),
    }


def _line(events: list[bytes], i: int) -> bytes:
    return events[i]


def _traffic(seed: int) -> tuple[list[bytes], list[bytes], dict[str, bytes]]:
    """(all bodies in a shuffled order, the good events, the bad bodies by name)."""
    events = make_events(GOOD_MESSAGES * PER_MESSAGE + 3, seed=seed)
    head, good = events[:3], events[3:]
    bad = poison(head)
    bodies = [*pack(good, PER_MESSAGE), _big_event(head), b"{}", *bad.values()]
    random.Random(seed).shuffle(bodies)
    return bodies, [*good, _big_event(head)], bad


def _schema_args(tmp_path: Path) -> list[str]:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    return ["--encoder", "parquet", "--encoder-opt", "on_schema_change=strict",
            "--encoder-opt", f"schema={path}"]


def _check_good(rows: list[dict[str, Any]], good: list[bytes]) -> None:
    ids = [r["id"] for r in rows if r["id"] is not None]
    assert sorted(ids) == sorted(json.loads(e)["id"] for e in good)
    assert_same_events([r for r in rows if r["id"] is not None], good)
    # "{}" is a valid (empty) object: written as one row of nulls, not rejected.
    assert [r for r in rows if r["id"] is None] == [dict.fromkeys(SCHEMA)]


@pytest.mark.timeout(120)
def test_poison_goes_to_the_s3_error_sink_raw_with_a_reason(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
    tmp_path: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, _ = make_queue(sqs, unique_name, visibility=3)
    bodies, good, bad = _traffic(seed=31)
    assert send(sqs, url, bodies) == len(bodies)
    run = run_ingest([
        *sqs_args(url, visibility=3, pollers=1), *_schema_args(tmp_path), *s3_args(unique_name),
        *s3_args(unique_name, "errors/", flag="--error-sink"),
        "--batch-max-age", "1s", "--exit-when-idle", "4s", "--log-format", "json",
    ], env_for(aws_env), logdir, timeout=90)

    assert run.code == 0, run.stderr[-3000:]
    _check_good(read_s3(s3, unique_name, "out/").rows, good)
    errors = error_records(read_s3(s3, unique_name, "errors/"))
    by_body = {e["body"]: e for e in errors}
    assert len(errors) == len(bad), sorted(by_body)[:20]
    for name, body in bad.items():
        record = by_body.get(body.decode())
        assert record is not None, f"{name} is not in the error sink"
        assert record["reason"], name
        assert record["message_id"], name
    assert run.stopped()["rejected"] == len(bad)
    assert wait_queue_empty(sqs, url) == (0, 0)
    print(f"\npoison/s3: {len(bodies)} messages, {len(good) + 1} good records, "
          f"{len(bad)} bad messages, reasons: "
          + "; ".join(f"{n}: {by_body[b.decode()]['reason'][:60]}" for n, b in bad.items()))


@pytest.mark.timeout(120)
def test_poison_without_error_sink_ends_in_the_dead_letter_queue(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
    tmp_path: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, dlq = make_queue(sqs, unique_name, visibility=VISIBILITY, dlq_max_receive=2)
    assert dlq is not None
    bodies, good, bad = _traffic(seed=32)
    assert send(sqs, url, bodies) == len(bodies)
    run = run_ingest([
        *sqs_args(url, visibility=VISIBILITY, pollers=1), *_schema_args(tmp_path),
        *s3_args(unique_name),
        "--batch-max-age", "1s", "--exit-when-idle", IDLE, "--log-format", "json",
    ], env_for(aws_env), logdir, timeout=90)

    assert run.code == 0, run.stderr[-3000:]
    _check_good(read_s3(s3, unique_name, "out/").rows, good)
    assert wait_queue_empty(sqs, url) == (0, 0)
    assert sorted(drain(sqs, dlq)) == sorted(b.decode() for b in bad.values())
    assert run.stopped()["acked"] == len(bodies) - len(bad)


@pytest.mark.timeout(60)
def test_invalid_utf8_through_the_file_source_goes_to_the_file_error_sink(
    aws_env: dict[str, str], tmp_path: Path, logdir: Path
) -> None:
    events = make_events(500, seed=33)
    bad = [b'{"id": "latin1-\xe9t\xe9"}', b"\xff\xfe\x00garbage", b'{"id": "cut-\xe2\x82"}']
    lines = [*events[:200], bad[0], *events[200:400], bad[1], *events[400:], bad[2]]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    run = run_ingest([
        "--source", "file", "--source-opt", f"path={source}", "--sink", "file",
        "--sink-opt", f"path={tmp_path / 'out'}", "--error-sink", "file",
        "--error-sink-opt", f"path={tmp_path / 'errors'}", "--log-format", "json",
    ], env_for(aws_env), logdir, timeout=50)

    assert run.code == 0, run.stderr[-3000:]
    out = read_tree(tmp_path / "out")
    assert sorted(out.ids) == sorted(json.loads(e)["id"] for e in events)
    assert_same_events(out.rows, events)
    errors = error_records(read_tree(tmp_path / "errors"))
    import base64

    raw = sorted(base64.b64decode(e["body_base64"]) for e in errors if e.get("body_base64"))
    assert raw == sorted(bad), errors
    assert all(e["reason"] for e in errors)


@pytest.mark.timeout(120)
def test_error_sink_down_nacks_rejected_messages_never_acks_them(
    aws: tuple[Any, Any], aws_env: dict[str, str], unique_name: str, logdir: Path,
    tmp_path: Path,
) -> None:
    sqs, s3 = aws
    s3.create_bucket(Bucket=unique_name)
    url, dlq = make_queue(sqs, unique_name, visibility=VISIBILITY, dlq_max_receive=2)
    assert dlq is not None
    bodies, good, bad = _traffic(seed=34)
    assert send(sqs, url, bodies) == len(bodies)
    run = run_ingest([
        *sqs_args(url, visibility=VISIBILITY, pollers=1), *_schema_args(tmp_path),
        *s3_args(unique_name),
        *s3_args(f"{unique_name}-missing", "errors/", flag="--error-sink", check_bucket="false"),
        "--batch-max-age", "1s", "--exit-when-idle", IDLE, "--write-attempts", "2",
        "--write-max-delay", "0.5s", "--log-format", "json",
    ], env_for(aws_env), logdir, timeout=90)

    assert run.code == 0, run.stderr[-3000:]
    _check_good(read_s3(s3, unique_name, "out/").rows, good)
    assert wait_queue_empty(sqs, url) == (0, 0)
    assert sorted(drain(sqs, dlq)) == sorted(b.decode() for b in bad.values())
    stopped = run.stopped()
    assert stopped["errors_written"] == 0, stopped
    assert stopped["acked"] == len(bodies) - len(bad), stopped
    assert stopped["nacked"] >= len(bad), stopped
    assert "error sink failed" in run.stderr
