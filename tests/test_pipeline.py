"""The pipeline with in-memory fakes: ack only after the sink commits, rejected-message routing,
retries, and event-time / field partitioning through the real json transformer + jsonl encoder."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
from parquet_ingestor.errors import PartialAckError
from parquet_ingestor.interfaces import BaseSource
from parquet_ingestor.message import Message
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.retry import RetryPolicy

NO_WAIT = RetryPolicy(attempts=3, base_delay=0, max_delay=0, jitter=0)


class Log:
    """One ordered, thread-safe log shared by the source and the sink."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, what: Any) -> None:
        with self.lock:
            self.events.append((kind, what))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]

    def ids(self, kind: str) -> list[str]:
        return [i for k, ids in self.events if k == kind for i in ids]


class RecordingSource(BaseSource):
    """Hands out its messages once; records every ack/nack in the shared log."""

    def __init__(self, messages: Sequence[Message], log: Log,
                 partial_ack_once: set[str] | None = None) -> None:
        self.pending = list(messages)
        self.log = log
        self.partial_ack_once = set(partial_ack_once or ())
        self.ack_calls = 0
        self.closed = False

    def receive(self, max_messages: int, timeout: float) -> list[Message]:
        out, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        return out

    def ack(self, messages: Sequence[Message]) -> None:
        self.ack_calls += 1
        failing = [m for m in messages if m.id in self.partial_ack_once]
        self.partial_ack_once.clear()
        self.log.add("ack", [m.id for m in messages if m not in failing])
        if failing:
            raise PartialAckError(failing, "throttled")

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        self.log.add("nack", [m.id for m in messages])

    @property
    def exhausted(self) -> bool:
        return not self.pending

    def close(self) -> None:
        self.closed = True


@dataclass
class MemorySink:
    """Commits into ``files``; the first ``fail_commits`` commits fail; optionally fails in
    ``write`` after ``fail_after_writes`` successful writes."""

    log: Log
    fail_commits: int = 0
    fail_after_writes: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    closed: bool = False

    def open(self, key: str, content_type: str, metadata: Any) -> _MemoryWriter:
        self.opened.append(key)
        return _MemoryWriter(self, key)

    def url(self, key: str) -> str:
        return f"mem://{key}"

    def close(self) -> None:
        self.closed = True


class _MemoryWriter:
    def __init__(self, sink: MemorySink, key: str) -> None:
        self.sink, self.key, self.buf, self.writes = sink, key, bytearray(), 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.sink.fail_after_writes is not None and self.writes >= self.sink.fail_after_writes:
            raise OSError("disk on fire")
        self.writes += 1
        self.buf += data
        return len(data)

    def commit(self) -> None:
        if self.sink.fail_commits > 0:
            self.sink.fail_commits -= 1
            raise ConnectionError("commit failed")
        self.sink.files[self.key] = bytes(self.buf)
        ids = [json.loads(line)["id"] for line in self.buf.splitlines()]
        self.sink.log.add("commit", ids)

    def abort(self) -> None:
        self.sink.aborted.append(self.key)
        self.sink.log.add("abort", self.key)


def msg(i: int | str, body: bytes | None = None) -> Message:
    return Message(str(i), body if body is not None else json.dumps({"id": str(i)}).encode())


def make(source: Any, sink: Any, error_sink: Any = None, **settings: Any) -> Pipeline:
    settings.setdefault("write_retry", NO_WAIT)
    settings.setdefault("ack_retry", NO_WAIT)
    settings.setdefault("workers", 1)
    return Pipeline(source, sink, JsonlEncoder(), settings=PipelineSettings(**settings),
                    error_sink=error_sink)


def rows_of(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for data in files.values() for line in data.splitlines()]


# ---------------------------------------------------------------- ack after write


def test_commit_always_fails_nothing_acked_all_nacked() -> None:
    log = Log()
    batch = [msg(i) for i in range(20)]
    sink = MemorySink(log, fail_commits=99)
    pipeline = make(RecordingSource(batch, log), sink)
    result = pipeline.flush(batch)
    assert log.ids("ack") == []
    assert sorted(log.ids("nack"), key=int) == [str(i) for i in range(20)]
    assert sink.files == {}
    assert len(sink.aborted) == 3  # one abort per attempt
    assert result.acked == 0 and result.nacked == 20
    assert result.error and "commit failed" in result.error
    snap = pipeline.metrics.snapshot()
    assert snap["write_failures"] == 1 and snap["write_retries"] == 2 and snap["acked"] == 0


def test_commit_fails_twice_then_succeeds_ack_only_after_commit() -> None:
    log = Log()
    batch = [msg(i) for i in range(20)]
    sink = MemorySink(log, fail_commits=2)
    pipeline = make(RecordingSource(batch, log), sink)
    result = pipeline.flush(batch)
    assert log.kinds() == ["abort", "abort", "commit", "ack"]
    assert log.ids("commit") == log.ids("ack") == [str(i) for i in range(20)]
    assert log.ids("nack") == []
    # every attempt is a fresh write of the same key
    assert len(set(sink.opened)) == 1 and len(sink.opened) == 3
    assert sink.aborted == sink.opened[:2]
    assert result.acked == 20 and result.error is None
    assert pipeline.metrics.snapshot()["write_retries"] == 2


def test_failure_mid_write_aborts_and_leaves_no_file(tmp_path: Path) -> None:
    """A real file sink that breaks after the first chunk: abort, no visible (or temp) file."""

    class BreakingFileSink(FileSink):
        aborts = 0

        def open(self, key: str, content_type: str, metadata: Any) -> Any:
            inner = super().open(key, content_type, metadata)
            sink = self

            class Writer:
                writes = 0

                def write(self, data: bytes) -> int:
                    if self.writes:
                        raise OSError("no space left on device")
                    self.writes += 1
                    return inner.write(data)

                def commit(self) -> None:
                    inner.commit()

                def abort(self) -> None:
                    sink.aborts += 1
                    inner.abort()

            return Writer()

    log = Log()
    batch = [msg(i) for i in range(6000)]  # the jsonl writer writes 4096 rows per chunk
    sink = BreakingFileSink(str(tmp_path / "out"), fsync=False)
    pipeline = make(RecordingSource(batch, log), sink)
    result = pipeline.flush(batch)
    assert sink.aborts == 3
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
    assert log.ids("ack") == [] and len(log.ids("nack")) == 6000
    assert result.error and "no space left" in result.error


def test_partial_ack_retries_only_the_failed_ones() -> None:
    log = Log()
    batch = [msg(i) for i in range(10)]
    source = RecordingSource(batch, log, partial_ack_once={"3", "7"})
    pipeline = make(source, MemorySink(log))
    result = pipeline.flush(batch)
    acks = [ids for kind, ids in log.events if kind == "ack"]
    assert acks == [[str(i) for i in range(10) if i not in (3, 7)], ["3", "7"]]
    assert result.acked == 10
    assert pipeline.metrics.snapshot()["ack_retries"] == 1


def test_ack_failing_for_good_counts_failures_but_does_not_nack() -> None:
    log = Log()
    batch = [msg(i) for i in range(4)]

    class NeverAcks(RecordingSource):
        def ack(self, messages: Sequence[Message]) -> None:
            raise PartialAckError(list(messages)[:1], "gone")

    pipeline = make(NeverAcks(batch, log), MemorySink(log))
    result = pipeline.flush(batch)
    assert result.acked == 3
    assert pipeline.metrics.snapshot()["ack_failures"] == 1


def test_run_drains_source_and_closes_components() -> None:
    log = Log()
    batch = [msg(i) for i in range(250)]
    source, sink = RecordingSource(batch, log), MemorySink(log)
    pipeline = make(source, sink, workers=3, receive_max=10,
                    batch=BatchLimits(max_bytes=10**9, max_records=40, max_age=0))
    metrics = pipeline.run()
    assert pipeline.stopped_reason == "drained"
    assert sorted(log.ids("ack"), key=int) == [str(i) for i in range(250)]
    assert sorted(r["id"] for r in rows_of(sink.files)) == sorted(str(i) for i in range(250))
    assert len(sink.files) == 7  # 6 x 40 + a final 10
    assert source.closed and sink.closed
    assert metrics.snapshot()["acked"] == 250
    # each message is acked only after a commit that contains it
    committed: set[str] = set()
    for kind, ids in log.events:
        if kind == "commit":
            committed.update(ids)
        elif kind == "ack":
            assert set(ids) <= committed


def test_abort_during_a_slow_write_acks_nothing() -> None:
    log = Log()
    batch = [msg(i) for i in range(6000)]
    entered, release = threading.Event(), threading.Event()

    class SlowSink(MemorySink):
        def open(self, key: str, content_type: str, metadata: Any) -> Any:
            writer = super().open(key, content_type, metadata)
            original = writer.write

            def write(data: Any) -> int:
                entered.set()
                release.wait(30)
                return original(data)

            writer.write = write  # type: ignore[method-assign]
            return writer

    sink = SlowSink(log)
    pipeline = make(RecordingSource(batch, log), sink)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(pipeline.flush(batch)))
    worker.start()
    assert entered.wait(30)
    pipeline.abort()
    release.set()
    worker.join(30)
    assert results and results[0].error == "aborted"
    assert log.ids("ack") == [] and sink.files == {}
    assert len(log.ids("nack")) == 6000


# ---------------------------------------------------------------- rejected messages

BAD = {
    "b-text": b"hello world",
    "b-array": b"[1, 2, 3]",
    "b-empty": b"",
    "b-blank": b"   ",
    "b-utf8": b'{"id": "\xff\xfe"}',
    "b-broken": b'{"id": "unterminated',
    "b-number": b"42",
}


def mixed_batch() -> list[Message]:
    out: list[Message] = []
    for i, (mid, body) in enumerate(BAD.items()):
        out.append(msg(f"g{2 * i}"))
        out.append(Message(mid, body, {"sent": 123}))
        out.append(msg(f"g{2 * i + 1}"))
    return out


def read_errors(root: Path) -> list[dict[str, Any]]:
    files = [p for p in root.rglob("*.jsonl") if not p.name.startswith(".")]
    return [json.loads(line) for p in files for line in p.read_bytes().splitlines()]


def test_rejected_go_to_the_error_sink_and_are_acked(tmp_path: Path) -> None:
    log = Log()
    batch = mixed_batch()
    sink = MemorySink(log)
    errors = FileSink(str(tmp_path / "errors"), fsync=False)
    pipeline = make(RecordingSource(batch, log), sink, error_sink=errors)
    result = pipeline.flush(batch)
    good = sorted(m.id for m in batch if m.id.startswith("g"))
    assert sorted(r["id"] for r in rows_of(sink.files)) == good
    records = {r["message_id"]: r for r in read_errors(tmp_path / "errors")}
    assert set(records) == set(BAD)
    for mid, body in BAD.items():
        record = records[mid]
        assert record["reason"], mid
        if mid == "b-utf8":
            assert record["body"] is None
            assert base64.b64decode(record["body_base64"]) == body
        else:
            assert record["body"].encode() == body
        assert record["attributes"] == {"sent": 123}
    assert sorted(log.ids("ack")) == sorted(m.id for m in batch)
    assert log.ids("nack") == []
    # the error file is written before the bad messages are acked
    assert result.rejected == len(BAD) and result.acked == len(batch)
    assert pipeline.metrics.snapshot()["errors_written"] == len(BAD)


def test_rejected_without_error_sink_are_nacked_never_acked() -> None:
    log = Log()
    batch = mixed_batch()
    sink = MemorySink(log)
    pipeline = make(RecordingSource(batch, log), sink)
    result = pipeline.flush(batch)
    assert sorted(log.ids("nack")) == sorted(BAD)
    assert sorted(log.ids("ack")) == sorted(m.id for m in batch if m.id.startswith("g"))
    assert not set(log.ids("ack")) & set(BAD)
    assert result.nacked == len(BAD) and result.rejected == len(BAD)


def test_failing_error_sink_nacks_rejected_never_acks_them() -> None:
    log = Log()
    batch = mixed_batch()
    error_sink = MemorySink(Log(), fail_commits=99)
    pipeline = make(RecordingSource(batch, log), MemorySink(log), error_sink=error_sink)
    result = pipeline.flush(batch)
    assert sorted(log.ids("nack")) == sorted(BAD)
    assert not set(log.ids("ack")) & set(BAD)
    assert sorted(log.ids("ack")) == sorted(m.id for m in batch if m.id.startswith("g"))
    assert error_sink.files == {} and len(error_sink.aborted) == 3
    assert result.nacked == len(BAD)


def test_a_batch_of_only_bad_messages_writes_no_data_file(tmp_path: Path) -> None:
    log = Log()
    batch = [Message(k, v) for k, v in BAD.items()]
    sink = MemorySink(log)
    pipeline = make(RecordingSource(batch, log), sink)
    pipeline.flush(batch)
    assert sink.opened == []
    assert sorted(log.ids("nack")) == sorted(BAD)


# ---------------------------------------------------------------- partitioning


def ev(i: int, created_at: Any = None, **extra: Any) -> Message:
    body: dict[str, Any] = {"id": str(i), **extra}
    if created_at is not None:
        body["created_at"] = created_at
    return Message(str(i), json.dumps(body).encode())


def hour_of(key: str) -> str:
    return "/".join(key.split("/")[:4])


def test_event_time_partitioning_across_hours_and_days() -> None:
    log = Log()
    times = {
        "2024-05-01T23:59:59.999Z": "2024/05/01/23",
        "2024-05-02T00:00:00Z": "2024/05/02/00",
        "2024-05-01T23:30:00-02:00": "2024/05/02/01",  # offsets are converted to UTC
        "2024-12-31T23:10:00+00:00": "2024/12/31/23",
        "2025-01-01T00:10:00Z": "2025/01/01/00",
        1714521600000: "2024/05/01/00",  # epoch milliseconds
        1714521600: "2024/05/01/00",  # epoch seconds
    }
    batch = [ev(i, t) for i, t in enumerate(times) for _ in range(3)]
    sink = MemorySink(log)
    make(RecordingSource(batch, log), sink, partition_by="event:created_at").flush(batch)
    by_hour: dict[str, list[Any]] = {}
    for key, data in sink.files.items():
        by_hour.setdefault(hour_of(key), []).extend(
            json.loads(line)["created_at"] for line in data.splitlines())
    expected: dict[str, list[Any]] = {}
    for t, hour in times.items():
        expected.setdefault(hour, []).extend([t] * 3)
    assert {h: sorted(map(str, v)) for h, v in by_hour.items()} == {
        h: sorted(map(str, v)) for h, v in expected.items()}
    assert len(log.ids("ack")) == len(batch)


@pytest.mark.parametrize("missing", [None, "not a time", "", True])
def test_missing_time_goes_to_processing_partition(missing: Any) -> None:
    log = Log()
    batch = [ev(1, "2020-01-02T03:04:05Z"), ev(2, missing)]
    sink = MemorySink(log)
    before = datetime.now(UTC)
    make(RecordingSource(batch, log), sink, partition_by="event:created_at").flush(batch)
    after = datetime.now(UTC)
    hours = {hour_of(k): [json.loads(x)["id"] for x in v.splitlines()]
             for k, v in sink.files.items()}
    now_hours = {before.strftime("%Y/%m/%d/%H"), after.strftime("%Y/%m/%d/%H")}
    assert hours.pop("2020/01/02/03") == ["1"]
    assert len(hours) == 1 and set(hours) <= now_hours and list(hours.values()) == [["2"]]
    assert sorted(log.ids("ack")) == ["1", "2"]


def test_missing_time_rejected_when_asked() -> None:
    log = Log()
    batch = [ev(1, "2020-01-02T03:04:05Z"), ev(2), ev(3, "garbage")]
    sink = MemorySink(log)
    make(RecordingSource(batch, log), sink, partition_by="event:created_at",
         on_missing_time="reject").flush(batch)
    assert [hour_of(k) for k in sink.files] == ["2020/01/02/03"]
    assert log.ids("ack") == ["1"]
    assert sorted(log.ids("nack")) == ["2", "3"]


def test_field_partitions() -> None:
    log = Log()
    countries = ["GB", "US", "FR", None, "../etc", "GB"]
    batch = [ev(i, country=c) for i, c in enumerate(countries) for _ in range(2)]
    sink = MemorySink(log)
    make(RecordingSource(batch, log), sink,
         key_template="country={field:country}/%Y/{uuid}.{ext}").flush(batch)
    seen: dict[str, set[Any]] = {}
    for key, data in sink.files.items():
        part = key.split("/")[0]
        seen.setdefault(part, set()).update(json.loads(x).get("country")
                                            for x in data.splitlines())
    assert seen == {"country=GB": {"GB"}, "country=US": {"US"}, "country=FR": {"FR"},
                    "country=__null__": {None}, "country=..%2Fetc": {"../etc"}}
    assert len(sink.files) == 5
    assert len(rows_of(sink.files)) == len(batch)


def test_max_open_partitions_overflow_to_processing_partition() -> None:
    log = Log()
    sizes = {"A": 5, "B": 4, "C": 3, "D": 1, "E": 1}
    batch = [ev(f"{c}{n}", country=c) for c, k in sizes.items() for n in range(k)]
    sink = MemorySink(log)
    make(RecordingSource(batch, log), sink, max_open_partitions=3,
         key_template="c={field:country}/{uuid}.{ext}").flush(batch)
    parts = {k.split("/")[0]: sorted(json.loads(x)["country"] for x in v.splitlines())
             for k, v in sink.files.items()}
    assert parts == {"c=A": ["A"] * 5, "c=B": ["B"] * 4, "c=__overflow__": ["C"] * 3 + ["D", "E"]}
    assert len(log.ids("ack")) == len(batch)


def test_max_open_partitions_overflow_rejected() -> None:
    log = Log()
    sizes = {"A": 5, "B": 4, "C": 3, "D": 1}
    batch = [ev(f"{c}{n}", country=c) for c, k in sizes.items() for n in range(k)]
    sink = MemorySink(log)
    make(RecordingSource(batch, log), sink, max_open_partitions=2,
         on_partition_overflow="reject", key_template="c={field:country}/{uuid}.{ext}",
         ).flush(batch)
    assert sorted(k.split("/")[0] for k in sink.files) == ["c=A", "c=B"]
    assert sorted(log.ids("nack")) == ["C0", "C1", "C2", "D0"]
    assert len(log.ids("ack")) == 9


def test_target_file_size_rolls_several_files() -> None:
    log = Log()
    batch = [ev(i, payload="x" * 200) for i in range(1000)]  # ~230 KB of output
    sink = MemorySink(log)
    pipeline = make(RecordingSource(batch, log), sink, target_file_size=20_000)
    pipeline.flush(batch)
    assert len(sink.files) >= 5
    assert len(log.ids("ack")) == 0  # the last file is still open: nothing acked yet
    pipeline.close_files()
    ids = [r["id"] for r in rows_of(sink.files)]
    assert sorted(ids, key=int) == [str(i) for i in range(1000)]
    assert len(set(ids)) == 1000
    assert sum(f.rows for f in pipeline.files) == 1000
    assert sorted(log.ids("ack"), key=int) == [str(i) for i in range(1000)]
    # the estimate improves with the first file: a second batch rolls close to the target
    before = len(pipeline.files)
    batch2 = [ev(i, payload="x" * 200) for i in range(1000, 2000)]
    pipeline.flush(batch2)
    pipeline.close_files()
    second = list(pipeline.files)[before:]
    assert second and all(f.bytes < 3 * 20_000 for f in second)


def test_partition_by_event_with_real_events(events_file: Any) -> None:
    path, ids = events_file(2000)
    log = Log()
    batch = [Message(str(i), line) for i, line in enumerate(path.read_bytes().splitlines())]
    sink = MemorySink(log)

    make(RecordingSource(batch, log), sink, partition_by="event:created_at").flush(batch)
    got: list[str] = []
    for key, data in sink.files.items():
        for line in data.splitlines():
            row = json.loads(line)
            got.append(row["id"])
            when = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
            assert hour_of(key) == when.astimezone(UTC).strftime("%Y/%m/%d/%H")
    assert sorted(got) == sorted(ids)


def test_messages_whose_ack_keeps_failing_are_released_not_held() -> None:
    from parquet_ingestor.testing import MemorySink, MemorySource, run_pipeline

    class AckFails(MemorySource):
        def ack(self, messages):  # type: ignore[no-untyped-def]
            raise OSError("delete outage")

    source = AckFails([b'{"a": 1}', b'{"a": 2}'])
    settings = PipelineSettings(batch=BatchLimits(max_bytes=1 << 20, max_age=0.2), workers=1,
                                exit_when_idle=0.5,
                                ack_retry=RetryPolicy(attempts=2, base_delay=0.01))
    outcome = run_pipeline(source, sink=MemorySink(), settings=settings)
    assert outcome.rows_written == 2  # written once; the acks failed
    assert sorted(m.id for m in source.nacked) == ["m0", "m1"]
    assert outcome.pipeline.metrics.counts["ack_failures"] == 2


def test_a_sink_that_fails_to_start_stops_the_run_before_anything_is_received() -> None:
    from parquet_ingestor.errors import ConfigError
    from parquet_ingestor.testing import MemorySink, MemorySource

    class BadSink(MemorySink):
        def start(self, context: Any) -> None:
            raise ConfigError("sink 'x' option 'bucket': bucket 'b' does not exist")

    class StartedSource(MemorySource):
        started = False

        def start(self, context: Any) -> None:
            self.started = True  # e.g. SQS pollers begin leasing messages here

    source = StartedSource([b'{"a": 1}'])
    pipeline = Pipeline(source, BadSink(), JsonlEncoder())
    with pytest.raises(ConfigError):
        pipeline.run()
    assert not source.started and source.deliveries == {} and source.acked == []


def test_run_raises_the_gil_switch_interval_and_gc_threshold_then_restores_them() -> None:
    """While running, fewer GIL hand-offs between flush threads (20 ms) and a gen-0 threshold
    of 50k; both back to the caller's values afterwards, and a larger interval is kept."""
    import gc
    import sys

    from parquet_ingestor.pipeline import SWITCH_INTERVAL
    from parquet_ingestor.testing import MemorySink, MemorySource, run_pipeline

    seen: list[tuple[float, int]] = []

    class Watching(MemorySource):
        def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
            seen.append((sys.getswitchinterval(), gc.get_threshold()[0]))
            return super().receive(max_messages, timeout)

    before_switch, before_gc = sys.getswitchinterval(), gc.get_threshold()
    try:
        for start, during in ((0.001, SWITCH_INTERVAL), (0.1, 0.1)):
            sys.setswitchinterval(start)
            seen.clear()
            outcome = run_pipeline(Watching([b'{"a": 1}']), sink=MemorySink())
            assert outcome.rows_written == 1
            assert seen and all(s == pytest.approx(during, abs=1e-4) and t >= 50_000 for s, t in seen)
            assert sys.getswitchinterval() == pytest.approx(start, abs=1e-4)
            assert gc.get_threshold() == before_gc
    finally:
        sys.setswitchinterval(before_switch)


def test_lines_given_back_after_a_failed_write_count_as_redeliveries() -> None:
    """received counts every delivery; redelivered the ones after the first, whatever gave the
    message back (a failed write here, not a rejection), so received - redelivered is the
    number of messages (the summary's "N messages (+M redeliveries)")."""
    from parquet_ingestor.testing import MemorySink, MemorySource

    source = MemorySource([json.dumps({"n": i}) for i in range(30)], redeliver=3)
    once = RetryPolicy(attempts=1, base_delay=0, max_delay=0, jitter=0)
    settings = PipelineSettings(workers=1, batch=BatchLimits(max_records=10), write_retry=once)
    pipeline = Pipeline(source, MemorySink(fail_commits=1), JsonlEncoder(), settings=settings)
    snap = pipeline.run().snapshot()
    assert snap["nacked"] == 10 and snap["acked"] == 30
    assert snap["received"] == 40 and snap["redelivered"] == 10
