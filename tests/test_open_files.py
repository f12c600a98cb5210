"""Files that outlive a batch (#12 items 1 and 2): with --target-file-size a partition's file
collects rows across flushes and commits at the target size, at --max-file-age, when
--max-open-files would be passed, before the source's hold budget, or at the end of the run;
messages are acked only after every file holding their rows has committed.

Real parts: the file sink and the Parquet encoder, read back with pyarrow row by row.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor.config import RunConfig
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.message import Message
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.retry import RetryPolicy
from parquet_ingestor.testing import MemorySource, wait_for

pq = pytest.importorskip("pyarrow.parquet")
NO_WAIT = RetryPolicy(attempts=2, base_delay=0, max_delay=0, jitter=0)
COUNTRIES = ("GB", "US", "FR")


class WatchedSink(FileSink):
    """The real file sink, recording commits in order and how many files were open at once;
    refuses to commit keys containing ``refuse``."""

    def __init__(self, path: str, events: list[tuple[str, Any]], refuse: str | None = None,
                 refuse_open: str | None = None):
        super().__init__(path, fsync=False)
        self.events = events
        self.refuse = refuse
        self.refuse_open = refuse_open
        self.open_now = 0
        self.most_open = 0
        self.lock = threading.Lock()

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        if self.refuse_open and self.refuse_open in key:
            raise OSError(36, "File name too long")
        writer = super().open(key, content_type, metadata)
        sink = self
        with self.lock:
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)

        class Writer:
            def write(self, data: Any) -> int:
                return writer.write(data)

            def commit(self) -> None:
                with sink.lock:
                    sink.open_now -= 1
                if sink.refuse and sink.refuse in key:
                    raise OSError(28, "No space left on device")
                writer.commit()
                ids = [r["id"] for r in pq.read_table(writer.target).to_pylist()]
                sink.events.append(("commit", ids))

            def abort(self) -> None:
                writer.abort()

        return Writer()


class Source(MemorySource):
    """MemorySource that logs acks and nacks (by record id) into the shared event list; with
    ``forever`` it never reports exhausted (a queue), so only stop() or idle ends the run."""

    def __init__(self, bodies: Sequence[bytes], events: list[tuple[str, Any]],
                 forever: bool = False, hold_budget: float | None = None) -> None:
        super().__init__(bodies)
        self.log = events
        self.forever = forever
        if hold_budget is not None:
            self.hold_budget = hold_budget

    def ack(self, messages: Sequence[Message]) -> None:
        super().ack(messages)
        self.log.append(("ack", [json.loads(m.body)["id"] for m in messages]))

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        super().nack(messages, delay)
        self.log.append(("nack", [json.loads(m.body)["id"] for m in messages]))

    @property
    def exhausted(self) -> bool:
        return False if self.forever else super().exhausted


def bodies(n: int) -> list[bytes]:
    return [json.dumps({"id": str(i), "country": COUNTRIES[i % 3], "pad": "x" * 100}).encode()
            for i in range(n)]


def pipeline_for(source: Any, sink: Any, **settings: Any) -> Pipeline:
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    settings.setdefault("write_retry", NO_WAIT)
    settings.setdefault("ack_retry", NO_WAIT)
    settings.setdefault("workers", 2)
    settings.setdefault("key_template", "country={field:country}/{uuid}.{ext}")
    settings.setdefault("batch", BatchLimits(max_bytes=1 << 30, max_records=20, max_age=0))
    return Pipeline(source, sink, ParquetEncoder(), JsonTransformer(), PipelineSettings(**settings))


def on_disk(root: Path) -> dict[str, list[str]]:
    """Record ids per visible Parquet file (pyarrow)."""
    return {str(p.relative_to(root)): [r["id"] for r in pq.read_table(p).to_pylist()]
            for p in sorted(root.rglob("*.parquet")) if not p.name.startswith(".")}


def assert_acked_after_commit(events: list[tuple[str, Any]]) -> None:
    committed: set[str] = set()
    for kind, ids in events:
        if kind == "commit":
            committed.update(ids)
        elif kind == "ack":
            assert set(ids) <= committed, "acked before the file holding it committed"


def test_files_collect_rows_across_batches_and_ack_after_commit(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(300), events)
    sink = WatchedSink(str(tmp_path / "out"), events)
    pipeline = pipeline_for(source, sink, target_file_size=64 << 20)
    pipeline.run()
    assert pipeline.metrics.snapshot()["batches"] == 15  # 300 messages, 20 per batch
    files = on_disk(tmp_path / "out")
    assert len(files) == 3  # one per partition, although 15 batches fed them
    for name, ids in files.items():
        country = name.split("/")[0].split("=")[1]
        assert sorted(ids, key=int) == [str(i) for i in range(300) if COUNTRIES[i % 3] == country]
    assert sorted(m.id for m in source.acked) == sorted(m.id for m in source.messages)
    assert source.nacked == []
    assert_acked_after_commit(events)


def test_target_size_and_max_open_files_close_files(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(600), events)
    sink = WatchedSink(str(tmp_path / "out"), events)
    pipeline = pipeline_for(source, sink, target_file_size=6_000, max_open_files=2)
    pipeline.run()
    files = on_disk(tmp_path / "out")
    ids = [i for rows in files.values() for i in rows]
    assert sorted(ids, key=int) == [str(i) for i in range(600)]  # every row once
    sizes = [(tmp_path / "out" / name).stat().st_size for name in files]
    assert len(files) > 3 and max(sizes) < 3 * 6_000
    assert sink.most_open <= 2 + 1  # two workers may each open one before the other closes
    assert_acked_after_commit(events)
    assert len(source.acked) == 600


def test_max_open_files_closes_the_least_recently_written(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(60), events)
    sink = WatchedSink(str(tmp_path / "out"), events)
    pipeline = pipeline_for(source, sink, target_file_size=64 << 20, max_open_files=1,
                            workers=1)
    pipeline.run()
    files = on_disk(tmp_path / "out")
    # each batch of 20 touches the three partitions in turn (starting where the previous batch
    # ended): with one file open at a time, every partition switch commits the previous file:
    # GB US FR | FR GB US | US FR GB -> 7 files, where an unbounded run would write 3
    assert sink.most_open == 1 and len(files) == 7
    assert sorted((i for rows in files.values() for i in rows), key=int) == [
        str(i) for i in range(60)]
    assert_acked_after_commit(events)


def test_max_file_age_commits_while_the_run_goes_on(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(30), events, forever=True)
    sink = WatchedSink(str(tmp_path / "out"), events)
    pipeline = pipeline_for(source, sink, target_file_size=64 << 20, max_file_age=0.3,
                            batch=BatchLimits(max_bytes=1 << 30, max_records=0, max_age=0.1))
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        assert wait_for(lambda: len(source.acked) == 30)  # committed by age, not by the end of the run
        assert runner.is_alive()
        assert sorted(i for rows in on_disk(tmp_path / "out").values() for i in rows) == sorted(
            str(i) for i in range(30))
    finally:
        pipeline.stop()
        runner.join(30)
    assert_acked_after_commit(events)


def test_hold_budget_commits_before_the_source_must_let_go(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(9), events, forever=True, hold_budget=1.0)
    sink = WatchedSink(str(tmp_path / "out"), events)
    # max_file_age 0: files never close by age, so only the hold budget can commit this one
    pipeline = pipeline_for(source, sink, target_file_size=64 << 20, max_file_age=0,
                            batch=BatchLimits(max_bytes=1 << 30, max_records=0, max_age=0.3))
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        assert wait_for(lambda: len(source.acked) == 9)
        assert runner.is_alive()
    finally:
        pipeline.stop()
        runner.join(30)
    assert_acked_after_commit(events)


@pytest.mark.parametrize("where", ["commit", "open"])
def test_a_failing_open_file_fails_only_its_messages(tmp_path: Path, where: str) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(120), events)
    sink = WatchedSink(str(tmp_path / "out"), events,
                       **{"refuse" if where == "commit" else "refuse_open": "country=FR"})
    pipeline = pipeline_for(source, sink, target_file_size=64 << 20, workers=1)
    pipeline.run()
    fr = {str(i) for i in range(120) if COUNTRIES[i % 3] == "FR"}
    nacked = {json.loads(m.body)["id"] for m in source.nacked}
    acked = {json.loads(m.body)["id"] for m in source.acked}
    assert nacked == fr and acked == {str(i) for i in range(120)} - fr
    ids = [i for rows in on_disk(tmp_path / "out").values() for i in rows]
    assert sorted(ids) == sorted(acked) and len(ids) == len(set(ids))
    assert_acked_after_commit(events)


def test_abort_drops_open_files_and_acks_nothing(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(40), events, forever=True)
    sink = WatchedSink(str(tmp_path / "out"), events)
    pipeline = pipeline_for(source, sink, target_file_size=64 << 20, max_file_age=0,
                            batch=BatchLimits(max_bytes=1 << 30, max_records=10, max_age=0))
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    assert wait_for(lambda: pipeline.metrics.snapshot()["batches"] == 4)
    pipeline.abort()
    runner.join(30)
    assert source.acked == [] and len(source.nacked) == 40
    assert on_disk(tmp_path / "out") == {}
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # no temporary files


def test_target_size_zero_keeps_one_file_per_partition_per_batch(tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    source = Source(bodies(60), events)
    pipeline = pipeline_for(source, WatchedSink(str(tmp_path / "out"), events))
    pipeline.run()
    assert len(on_disk(tmp_path / "out")) == 3 * 3  # 3 batches x 3 partitions


def test_bad_open_file_options_name_the_option() -> None:
    with pytest.raises(ConfigError, match="^--max-open-files: '0' is below the minimum 1$"):
        RunConfig(pipeline={"max_open_files": "0"}).values()
    source = Source([], [], hold_budget=60.0)
    with pytest.raises(ConfigError, match="^--max-file-age: 120s is above the source's hold"):
        pipeline_for(source, WatchedSink("/tmp/unused-i12", []), target_file_size=1 << 20,
                     max_file_age=120.0)
    with pytest.raises(ConfigError, match="--batch-max-age .*300s is above the source's hold"):
        pipeline_for(source, WatchedSink("/tmp/unused-i12", []), target_file_size=1 << 20,
                     batch=BatchLimits())
    # without a target size files do not outlive a batch: the hold budget does not apply
    pipeline_for(source, WatchedSink("/tmp/unused-i12", []), batch=BatchLimits())


def test_without_partition_fields_one_file_collects_every_batch(tmp_path: Path) -> None:
    """Processing-time partitions are the key template's grain (here a day), not the flush
    instant: 6 batches, one file."""
    events: list[tuple[str, Any]] = []
    source = Source(bodies(120), events)
    pipeline = pipeline_for(source, WatchedSink(str(tmp_path / "out"), events),
                            target_file_size=64 << 20, key_template="%Y/%m/%d/{uuid}.{ext}")
    pipeline.run()
    files = on_disk(tmp_path / "out")
    assert pipeline.metrics.snapshot()["batches"] == 6
    assert len(files) == 1 and sorted(next(iter(files.values())), key=int) == [
        str(i) for i in range(120)]


def test_a_source_that_settles_by_handle_lets_the_bodies_go(tmp_path: Path) -> None:
    """``settles_without_body``: once its rows are in open files, a message keeps its id and
    handle only (memory holds encoded rows, not the input); it is still acked after commit."""
    events: list[tuple[str, Any]] = []
    seen_empty: list[bool] = []

    class ByHandle(Source):
        settles_without_body = True

        def ack(self, messages: Sequence[Message]) -> None:
            seen_empty.extend(m.body == b"" for m in messages)
            MemorySource.ack(self, messages)

    source = ByHandle(bodies(60), events)
    pipeline = pipeline_for(source, WatchedSink(str(tmp_path / "out"), events),
                            target_file_size=64 << 20)
    pipeline.run()
    assert len(seen_empty) == 60 and all(seen_empty)
    ids = [i for rows in on_disk(tmp_path / "out").values() for i in rows]
    assert sorted(ids, key=int) == [str(i) for i in range(60)]


def test_held_input_past_max_held_bytes_commits_the_open_files(tmp_path: Path) -> None:
    """A source that needs bodies back (this one) holds their input while files are open:
    past --max-held-bytes every open file commits, so memory stays bounded by it."""
    events: list[tuple[str, Any]] = []
    source = Source(bodies(120), events)
    per_batch = sum(len(b) for b in bodies(20))
    pipeline = pipeline_for(source, WatchedSink(str(tmp_path / "out"), events), workers=1,
                            target_file_size=64 << 20, max_held_bytes=int(2.5 * per_batch))
    pipeline.run()
    files = on_disk(tmp_path / "out")
    # 6 batches of 20 (3 partitions each): every third batch passes the budget -> 2 rounds of
    # 3 files (where an unbounded run would write 3 files in all)
    assert len(files) == 6
    assert sorted((i for rows in files.values() for i in rows), key=int) == [
        str(i) for i in range(120)]
    assert len(source.acked) == 120 and pipeline._commit._held_bytes == 0
    assert_acked_after_commit(events)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_field_that_appears_while_a_file_is_open_is_kept(tmp_path: Path, workers: int) -> None:
    """A file opened before a field (or a struct's new key) first appeared does not take the
    later rows as they are: it commits, and they go to a new file with the new columns. Before
    ``FrameWriter.fits`` the file kept its first schema and dropped the new values."""
    events: list[tuple[str, Any]] = []
    rows = []
    for i in range(300):
        row: dict[str, Any] = {"id": str(i), "country": "GB", "ctx": {"a": i}}
        if i >= 100:
            row["extra"] = f"x{i}"
        if i >= 200:
            row["ctx"]["b"] = -i
        rows.append(row)
    source = Source([json.dumps(r).encode() for r in rows], events)
    pipeline = pipeline_for(source, WatchedSink(str(tmp_path / "out"), events), workers=workers,
                            target_file_size=64 << 20)
    pipeline.run()
    got = {r["id"]: r for p in (tmp_path / "out").rglob("*.parquet")
           for r in pq.read_table(p).to_pylist()}
    assert len(got) == 300
    for row in rows:
        back = got[row["id"]]
        assert back.get("extra") == row.get("extra")
        assert back["ctx"]["a"] == row["ctx"]["a"] and back["ctx"].get("b") == row["ctx"].get("b")
    assert len(on_disk(tmp_path / "out")) >= 3  # one file per schema at least
    assert sorted(m.id for m in source.acked) == sorted(m.id for m in source.messages)
    assert_acked_after_commit(events)
