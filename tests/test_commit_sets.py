"""The commit model: each flush writes its files as one commit set and acks after the set commits;
a file that fails for good fails only the messages with rows in it (issue #12 item 2, #17 item 3).

Real parts where it matters: the file sink, the Parquet encoder, read back with pyarrow and
DuckDB row by row. The transactional sink is a small in-memory one (a unit of the protocol).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
from parquet_ingestor.interfaces import BaseSource, SinkRequirements
from parquet_ingestor.message import Message
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.retry import RetryPolicy
from parquet_ingestor.testing import MemorySink, MemorySource

pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb")

NO_WAIT = RetryPolicy(attempts=3, base_delay=0, max_delay=0, jitter=0)
COUNTRIES = ["GB", "US", "FR", "bad"]


class Recorder(BaseSource):
    """Hands out messages once and records acks and nacks, in order, with the files on disk."""

    def __init__(self, messages: Sequence[Message], events: list[tuple[str, Any]]) -> None:
        self.pending = list(messages)
        self.events = events
        self.acked: list[str] = []
        self.nacked: list[str] = []

    def receive(self, max_messages: int, timeout: float) -> list[Message]:
        out, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        return out

    def ack(self, messages: Sequence[Message]) -> None:
        self.acked += [m.id for m in messages]
        self.events.append(("ack", [m.id for m in messages]))

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        self.nacked += [m.id for m in messages]
        self.events.append(("nack", [m.id for m in messages]))

    @property
    def exhausted(self) -> bool:
        return not self.pending


class RefusingFileSink(FileSink):
    """The real file sink, refusing keys that contain ``refuse`` at open (``where='open'``) or
    at commit (``where='commit'``: the file was written, then its rename fails)."""

    def __init__(self, path: str, refuse: str | None, where: str = "open") -> None:
        super().__init__(path, fsync=False)
        self.refuse = refuse
        self.where = where
        self.attempts: dict[str, int] = {}

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        refused = self.refuse is not None and self.refuse in key
        if refused:
            self.attempts[key] = self.attempts.get(key, 0) + 1
        if refused and self.where == "open":
            raise OSError(36, "File name too long")
        writer = super().open(key, content_type, metadata)
        if refused and self.where == "commit":
            def commit() -> None:
                raise OSError(28, "No space left on device")

            writer.commit = commit
        return writer


def batch_of(per_country: int = 5) -> list[Message]:
    """One message per (country, n); message ``mixed`` has a row in GB and a row in 'bad'."""
    out = [Message(f"{c}{n}", json.dumps({"id": f"{c}{n}", "country": c}).encode())
           for c in COUNTRIES for n in range(per_country)]
    mixed = "\n".join(json.dumps({"id": f"mixed-{c}", "country": c}) for c in ("GB", "bad"))
    out.append(Message("mixed", mixed.encode()))
    return out


def parquet_pipeline(source: Any, sink: Any, **settings: Any) -> Pipeline:
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    settings.setdefault("write_retry", NO_WAIT)
    settings.setdefault("ack_retry", NO_WAIT)
    settings.setdefault("workers", 1)
    settings.setdefault("key_template", "country={field:country}/{uuid}.{ext}")
    return Pipeline(source, sink, ParquetEncoder(), JsonTransformer(lines=True),
                    PipelineSettings(**settings))


def rows_on_disk(root: Path) -> list[tuple[str, str]]:
    """(id, country directory) of every row of every visible Parquet file, via pyarrow."""
    out = []
    for path in sorted(root.rglob("*.parquet")):
        if path.name.startswith("."):
            continue
        for row in pq.read_table(path).to_pylist():
            out.append((row["id"], path.parent.name))
    return out


@pytest.mark.parametrize("where", ["open", "commit"])
def test_a_failing_partition_fails_only_its_messages(tmp_path: Path, where: str) -> None:
    events: list[tuple[str, Any]] = []
    batch = batch_of()
    source = Recorder(batch, events)
    sink = RefusingFileSink(str(tmp_path / "out"), refuse="country=bad", where=where)
    pipeline = parquet_pipeline(source, sink)
    result = pipeline.flush(batch)

    bad = sorted([f"bad{n}" for n in range(5)] + ["mixed"])
    good = sorted(m.id for m in batch if m.id not in bad)
    assert sorted(source.nacked) == bad
    assert sorted(source.acked) == good
    assert not set(source.acked) & set(source.nacked)
    assert sink.attempts and all(n == 3 for n in sink.attempts.values())  # retried, then failed
    # every good row once, in its own partition; nothing of the failed partition is visible
    rows = rows_on_disk(tmp_path / "out")
    expected = sorted([(f"{c}{n}", f"country={c}") for c in ("GB", "US", "FR") for n in range(5)]
                      + [("mixed-GB", "country=GB")])
    assert sorted(rows) == expected
    assert not any(p.name.startswith(".") for p in (tmp_path / "out").rglob("*"))
    # the mixed message's GB row is committed although the message is nacked: counted
    assert result.possible_duplicate_rows == 1
    snap = pipeline.metrics.snapshot()
    assert snap["possible_duplicate_rows"] == 1 and snap["write_failures"] == 1
    assert result.acked == len(good) and result.nacked == len(bad)
    assert result.error and ("too long" in result.error or "No space" in result.error)

    # redelivery once the partition is writable again: each failed row lands once; only the
    # counted row appears twice
    sink.refuse = None
    again = [m for m in batch if m.id in bad]
    source2 = Recorder(again, events)
    pipeline2 = parquet_pipeline(source2, sink)
    pipeline2.flush(again)
    assert sorted(source2.acked) == bad
    ids = duckdb.sql(f"select id, count(*) from read_parquet('{tmp_path}/out/**/*.parquet') "
                     "group by id order by id").fetchall()
    counts = dict(ids)
    assert counts.pop("mixed-GB") == 2
    assert counts == {i: 1 for i, _ in expected if i != "mixed-GB"} | {
        f"bad{n}": 1 for n in range(5)} | {"mixed-bad": 1}


def test_a_partition_failing_through_a_whole_run_is_not_committed_twice(tmp_path: Path) -> None:
    """Through ``run()`` with a redelivering source: the good partitions are written once, the
    failing one's messages come back (and back) but never duplicate the good rows."""
    batch = batch_of(3)
    source = MemorySource([m.body for m in batch], redeliver=2)
    sink = RefusingFileSink(str(tmp_path / "out"), refuse="country=bad")
    pipeline = parquet_pipeline(source, sink, exit_when_idle=0.2)
    pipeline.run()
    rows = rows_on_disk(tmp_path / "out")
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)) + 2  # mixed-GB, once per delivery of 'mixed' (3)
    assert {r[1] for r in rows} == {"country=GB", "country=US", "country=FR"}
    nacked = {m.id for m in source.nacked}
    assert len(source.nacked) == 3 * 4  # 3 bad + mixed, each delivered 3 times
    assert not nacked & {m.id for m in source.acked}
    assert pipeline.metrics.snapshot()["possible_duplicate_rows"] == 3


# ------------------------------------------------------------------------ transactional sinks


class TableSink:
    """A sink with ``begin()``: files become visible only when their set commits, all at once."""

    def __init__(self, events: list[tuple[str, Any]], fail_commits: int = 0) -> None:
        self.events = events
        self.fail_commits = fail_commits
        self.visible: dict[str, bytes] = {}
        self.summaries: list[dict[str, str]] = []
        self.begun = 0
        self.lock = threading.Lock()
        self.requirements_asked = 0

    def begin(self) -> Any:
        self.begun += 1
        return _Txn(self)

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        raise AssertionError("a transactional sink is only written through begin()")

    def url(self, key: str) -> str:
        return f"table://{key}"

    def close(self) -> None:
        pass


class _Txn:
    def __init__(self, sink: TableSink) -> None:
        self.sink = sink
        self.staged: dict[str, bytearray] = {}

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        buf = self.staged.setdefault(key, bytearray())
        staged = self.staged

        class Writer:
            def write(self, data: bytes | bytearray | memoryview) -> int:
                buf.extend(data)
                return len(data)

            def commit(self) -> None:
                pass

            def abort(self) -> None:
                staged.pop(key, None)

        return Writer()

    def commit(self, summary: Mapping[str, str]) -> None:
        sink = self.sink
        with sink.lock:
            if sink.fail_commits:
                sink.fail_commits -= 1
                raise ConnectionError("catalog unavailable")
            sink.visible.update({k: bytes(v) for k, v in self.staged.items()})
            sink.summaries.append(dict(summary))
            sink.events.append(("commit", sorted(self.staged)))

    def abort(self) -> None:
        self.staged.clear()


def jsonl_pipeline(source: Any, sink: Any, **settings: Any) -> Pipeline:
    settings.setdefault("write_retry", NO_WAIT)
    settings.setdefault("ack_retry", NO_WAIT)
    settings.setdefault("workers", 1)
    settings.setdefault("key_template", "country={field:country}/{uuid}.{ext}")
    return Pipeline(source, sink, JsonlEncoder(), JsonTransformer(lines=True),
                    PipelineSettings(**settings))


def test_one_commit_set_per_flush_with_summary_and_acks_after_it() -> None:
    events: list[tuple[str, Any]] = []
    batch = batch_of(4)
    source, sink = Recorder(batch, events), TableSink(events)
    result = jsonl_pipeline(source, sink).flush(batch)
    assert sink.begun == 1 and len(sink.summaries) == 1
    assert [kind for kind, _ in events] == ["commit", "ack"]
    summary = sink.summaries[0]
    assert len(summary["ingest.commit-id"]) == 32
    assert summary["ingest.files"] == "4" and len(sink.visible) == 4
    assert summary["ingest.records"] == str(4 * 4 + 2)
    assert summary["ingest.messages"] == str(len(batch))
    assert summary["ingest.writer"].startswith("parquet-ingestor ")
    rows = [json.loads(line) for data in sink.visible.values() for line in data.splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(
        [f"{c}{n}" for c in COUNTRIES for n in range(4)] + ["mixed-GB", "mixed-bad"])
    assert sorted(source.acked) == sorted(m.id for m in batch) and result.acked == len(batch)


def test_a_failed_set_commit_is_retried_with_the_same_commit_id_then_nacks_all() -> None:
    events: list[tuple[str, Any]] = []
    batch = batch_of(2)
    source, sink = Recorder(batch, events), TableSink(events, fail_commits=2)
    pipeline = jsonl_pipeline(source, sink)
    pipeline.flush(batch)
    assert sink.begun == 3 and len(sink.summaries) == 1 and events[-1][0] == "ack"
    assert pipeline.metrics.snapshot()["write_retries"] == 4 * 2  # 4 files, 2 retries each

    events.clear()
    ids: list[str] = []
    sink2 = TableSink(events, fail_commits=99)
    original = _Txn.commit

    def spy(self: _Txn, summary: Mapping[str, str]) -> None:
        ids.append(summary["ingest.commit-id"])
        original(self, summary)

    _Txn.commit = spy  # type: ignore[method-assign]
    try:
        source2 = Recorder(batch, events)
        result = jsonl_pipeline(source2, sink2).flush(batch)
    finally:
        _Txn.commit = original  # type: ignore[method-assign]
    assert len(ids) == 3 and len(set(ids)) == 1  # one logical set, retried under one id
    assert sink2.visible == {} and source2.acked == []
    assert sorted(source2.nacked) == sorted(m.id for m in batch)
    assert result.error and "catalog unavailable" in result.error


def test_sink_requirements_reach_the_encoder_or_refuse_to_start() -> None:
    from parquet_ingestor.errors import ConfigError

    needs = SinkRequirements(partition_fields=("country",))

    class NeedySink(MemorySink):
        def requirements(self) -> SinkRequirements:
            return needs

    class Obliging(JsonlEncoder):
        got: list[SinkRequirements] = []

        def require(self, requirements: SinkRequirements) -> None:
            self.got.append(requirements)

    encoder = Obliging()
    Pipeline(MemorySource([]), NeedySink(), encoder).run()
    assert encoder.got == [needs]
    with pytest.raises(ConfigError, match="requires a schema"):
        Pipeline(MemorySource([]), NeedySink(), JsonlEncoder()).validate()


def test_encoder_and_transformer_are_closed_after_a_run() -> None:
    closed: list[str] = []

    class ClosingEncoder(JsonlEncoder):
        def close(self) -> None:
            closed.append("encoder")

    class ClosingTransformer(JsonTransformer):
        def close(self) -> None:
            closed.append("transformer")

    pipeline = Pipeline(MemorySource([b'{"a": 1}']), MemorySink(), ClosingEncoder(),
                        ClosingTransformer())
    pipeline.run()
    assert sorted(closed) == ["encoder", "transformer"]
