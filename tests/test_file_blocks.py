"""Blocks of lines (issues #12/#19): the file source hands a file over as one message per block
of whole lines when the transformer reads them (``RunContext.multi_record``); a block with a
rejected line is split into its lines (``Source.split``), so errors, acks and redelivery stay
per line. Unit tests of the contract, then real runs read back row by row with pyarrow."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.file_source import FileSource
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor.interfaces import RunContext
from parquet_ingestor.message import Message
from parquet_ingestor.metrics import Metrics
from parquet_ingestor.records import TextLines
from parquet_ingestor.runner import Pipeline
from parquet_ingestor.settings import PipelineSettings

BOM = b"\xef\xbb\xbf"


def started(path: Path, max_bytes: int = 1 << 12, multi: bool = True, **kw: Any) -> FileSource:
    source = FileSource(str(path), **kw)
    source.start(RunContext(workers=1, metrics=Metrics(), batch=BatchLimits(max_bytes=max_bytes),
                            multi_record=multi))
    return source


def drain(source: FileSource) -> list[Message]:
    out: list[Message] = []
    while batch := source.receive(1000, 0.0):
        out += batch
    return out


def events(n: int, bad: dict[int, bytes] | None = None) -> bytes:
    """Lines 1..n: ``{"id": i, "n": i}`` unless ``bad`` has line i."""
    bad = bad or {}
    return b"".join(bad.get(i, b'{"id": %d, "n": %d}' % (i, i)) + b"\n" for i in range(1, n + 1))


# ------------------------------------------------------------------------------ the source


def test_blocks_hold_whole_lines_and_count_them(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(2000))
    got = drain(started(path))
    assert len(got) < 100 and all(m.records > 1 for m in got)  # ~4 KiB blocks, not lines
    assert sum(m.records for m in got) == 2000
    assert b"\n".join(m.body for m in got) + b"\n" == path.read_bytes()
    assert got[0].id == f"{path}:1-{got[0].records}"
    assert got[1].id.startswith(f"{path}:{got[0].records + 1}-")


def test_without_multi_record_lines_come_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(50))
    got = drain(started(path, multi=False))
    assert [m.records for m in got] == [1] * 50
    assert [m.id for m in got] == [f"{path}:{i}" for i in range(1, 51)]


@pytest.mark.parametrize("data", [
    events(300).replace(b"\n", b"\r\n"),  # CRLF
    BOM + events(300) + BOM + b'{"id": 301}\n',  # a byte order mark opening a line
], ids=["crlf", "bom"])
def test_a_block_split_drops_crs_and_boms_as_lines_do(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    source = started(path)
    blocks = drain(source)
    assert all(m.records > 1 for m in blocks)
    lines = [line for block in blocks for line in source.split(block)]
    expected = drain(started(path, multi=False))  # read line by line
    assert [(m.id, m.body) for m in lines] == [(m.id, m.body) for m in expected]
    assert [json.loads(m.body)["id"] for m in lines] == list(range(1, len(lines) + 1))


def test_crlf_and_bom_files_are_written_whole(tmp_path: Path, run_ingest: Any) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(BOM + events(3000, {2000: BOM + b'{"id": 2000, "n": 2000}'}).replace(
        b"\n", b"\r\n"))
    out, err = tmp_path / "out", tmp_path / "err"
    proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--error-sink", "file", "--error-sink-opt",
                      f"path={err}", "--batch-max-bytes", "64KiB")
    assert proc.returncode == 0, proc.stderr
    assert rows(out) == [{"id": i, "n": i} for i in range(1, 3001)]
    assert not err.exists() or errors(err) == []
    assert "stopped (drained): 3000 messages" in proc.stderr


def test_split_gives_the_lines_with_their_numbers_and_settles_them(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": 1}\n\n  \n{"id": 4}\nnot json\n{"id": 6}\n')
    source = started(path)
    [block] = drain(source)
    assert block.records == 6
    lines = source.split(block)
    assert [(m.id, m.body) for m in lines] == [
        (f"{path}:1", b'{"id": 1}'), (f"{path}:4", b'{"id": 4}'), (f"{path}:5", b"not json"),
        (f"{path}:6", b'{"id": 6}')]  # blank lines count, and have no message
    source.ack(lines)
    assert source.exhausted
    source.close()
    assert source.unwritten == [] and source.failed == []


def test_a_nacked_block_comes_back_line_by_line_and_a_poison_line_fails_alone(
        tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(5))
    source = started(path, max_deliveries=2)
    [block] = drain(source)
    source.nack([block], 0)
    again = source.receive(100, 1.0)
    assert [m.id for m in again] == [f"{path}:{i}" for i in range(1, 6)]
    assert {m.deliveries for m in again} == {2}
    source.ack([m for m in again if not m.id.endswith(":3")])
    source.nack([m for m in again if m.id.endswith(":3")], 0)  # its last delivery: failed
    assert source.exhausted
    source.close()
    assert [m.id for m in source.unwritten] == [f"{path}:3"]
    assert source.unwritten[0].body == b'{"id": 3, "n": 3}'


@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz"])
def test_a_block_without_its_body_is_read_again(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    data = events(1000)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    source = started(path)
    assert source.settles_without_body
    blocks = drain(source)
    middle = blocks[len(blocks) // 2]
    body = middle.body
    middle.body = b""  # dropped while its rows waited in an open file
    lines = source.split(middle)
    assert b"\n".join(m.body for m in lines) == body
    first, _, _ = lines[0].id.rpartition(":")
    assert first == str(path)
    source.ack([b for b in blocks if b is not middle] + lines)
    source.close()
    assert source.unwritten == []


def test_unsettled_blocks_are_spilled_as_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(300))
    spill = tmp_path / "spill.jsonl"
    source = started(path, spill=str(spill))
    blocks = drain(source)
    source.ack(blocks[1:])
    source.close()  # the first block is still held: an abort
    assert source.spilled == blocks[0].records
    assert spill.read_bytes() == blocks[0].body + b"\n"


# ------------------------------------------------------------------------- the transformer


def test_the_json_transformer_keeps_blocks_joined() -> None:
    block = _Block3()
    line = Message("m:4", b'{"id": 4}')
    result = JsonTransformer().transform([block, line])
    assert isinstance(result.records.lines, TextLines) and not result.records.lines.is_split
    assert result.records.sources == [0, 0, 0, 1]
    assert list(result.records.lines) == [b'{"id": 1}', b'{"id": 2}', b'{"id": 3}',
                                          b'{"id": 4}']
    assert JsonTransformer().multi_record
    assert not JsonTransformer(add_attributes=["message_id"]).multi_record


@pytest.mark.parametrize("body", [b'{"id": 1}\n[2]\n{"id": 3}', b'{"id": 1}\n\n{"id": 3}',
                                  b'{"id": 1}\r\n{"id": 2}\n[3]'])
def test_a_block_with_a_bad_line_is_rejected_whole(body: bytes) -> None:
    """By the transformer (the careful path) or the encoder: the pipeline then splits it."""
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    block, line = _Block3(body), Message("m:4", b'{"id": 4}')
    result = JsonTransformer().transform([line, block])
    decoded = ParquetEncoder().decode(result.records)
    rejected = [r.message for r in result.rejected] + [[line, block][i]
                                                       for i, _ in decoded.rejected]
    assert rejected == [block]  # the core leaves the block's other rows out of the files


class _Block3(Message):
    """A third-party block: three lines, one message."""

    __slots__ = ("records",)

    def __init__(self, body: bytes = b'{"id": 1}\n{"id": 2}\n{"id": 3}') -> None:
        super().__init__("b:1-3", body)
        self.records = 3


def test_batch_max_records_keeps_lines(tmp_path: Path) -> None:
    """--batch-max-records counts messages: with it, the source is not offered blocks."""
    def context(**batch: Any) -> RunContext:
        return Pipeline(FileSource(str(path)), FileSink(str(tmp_path / "o")), _Encoder(),
                        settings=PipelineSettings(batch=BatchLimits(**batch)))._context()

    path = tmp_path / "in.jsonl"
    path.write_bytes(events(3))
    assert context(max_bytes=1 << 20).multi_record
    assert not context(max_bytes=1 << 20, max_records=100).multi_record


class _Encoder:
    extension = "x"
    content_type = "x"


# ---------------------------------------------------------------------- real runs, read back


def rows(out: Path) -> list[dict[str, Any]]:
    files = sorted(out.rglob("*.parquet"))
    assert files
    found = [row for f in files for row in pq.read_table(f).to_pylist()]
    return sorted(found, key=lambda r: r["id"])


def errors(root: Path) -> list[dict[str, Any]]:
    return sorted((json.loads(line) for f in root.rglob("*.jsonl")
                   for line in f.read_text().splitlines()), key=lambda r: r["message_id"])


BAD = {7: b"not json", 130: b"[1, 2]", 131: b"", 400: b'{"id": 400, "n": "four hundred"}',
       777: b"null", 1500: b'{"id": 1500, "n": 1} {"id": 0}', 2999: b"   "}


@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz"])
def test_bad_lines_inside_blocks_go_to_the_error_sink_alone(
        tmp_path: Path, run_ingest: Any, name: str) -> None:
    data = events(3000, BAD)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    out, err = tmp_path / "out", tmp_path / "err"
    # declared: with two workers either block may be conformed first, and a new field whose
    # first batch holds an int and a string is text (docs/types.md); declared, "n" is int64
    schema = tmp_path / "schema.json"
    schema.write_text('{"id": "int64", "n": "int64"}')
    proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--error-sink", "file", "--error-sink-opt",
                      f"path={err}", "--batch-max-bytes", "64KiB", "--workers", "2",
                      "--encoder-opt", f"schema={schema}")
    assert proc.returncode == 0, proc.stderr
    blank = {i for i, body in BAD.items() if not body.strip()}
    rejected = {i: body for i, body in BAD.items() if i not in blank}
    assert rows(out) == [{"id": i, "n": i} for i in range(1, 3001) if i not in BAD]
    got = errors(err)
    assert [(r["message_id"], r["body"]) for r in got] == sorted(
        (f"{path}:{i}", body.decode()) for i, body in rejected.items())
    reasons = {r["message_id"].rpartition(":")[2]: r["reason"] for r in got}
    assert reasons["7"] == "body is not a JSON object"
    assert "cannot be stored" in reasons["400"] and "'n'" in reasons["400"]
    assert reasons["777"] == "body is not a JSON object"  # as when read line by line
    # every line read counts, the two blank lines inside blocks too (docs/guarantees.md)
    assert "stopped (drained): 3000 messages" in proc.stderr
    assert f"{len(rejected)} rejected, 0 nacked" in proc.stderr


def test_without_an_error_sink_a_bad_line_is_isolated_and_spilled(
        tmp_path: Path, run_ingest: Any) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(2000, {1234: b"oops"}))
    out = tmp_path / "out"
    proc = run_ingest("--source", "file", "--source-opt", f"path={path}", "--sink", "file",
                      "--sink-opt", f"path={out}", "--batch-max-bytes", "64KiB",
                      "--max-deliveries", "2")
    assert proc.returncode == 1, proc.stderr
    assert rows(out) == [{"id": i, "n": i} for i in range(1, 2001) if i != 1234]
    [spill] = tmp_path.glob("ingest-unwritten-*.jsonl")
    assert spill.read_bytes() == b"oops\n"


def test_clean_file_through_blocks_matches_the_input(tmp_path: Path) -> None:
    """In-process: every line written once, in order within each file, all acked."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(5000))
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    source = FileSource(str(path))
    pipeline = Pipeline(source, FileSink(str(tmp_path / "out"), fsync=False), ParquetEncoder(),
                        settings=PipelineSettings(batch=BatchLimits(max_bytes=50_000),
                                                  workers=2))
    metrics = pipeline.run()
    assert rows(tmp_path / "out") == [{"id": i, "n": i} for i in range(1, 5001)]
    snap = metrics.snapshot()
    assert snap["received"] == snap["acked"] == 5000
    assert source.unwritten == [] and source.failed == []


def test_counts_add_up_when_blocks_are_split(tmp_path: Path) -> None:
    """Blank and bad lines inside blocks: received = acked (blank lines settle with their
    block), and the files' message counts count lines, as received does."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(3000, {5: b"", 6: b"  ", 700: b"oops"}))
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    out, err = tmp_path / "out", tmp_path / "err"
    pipeline = Pipeline(FileSource(str(path)), FileSink(str(out), fsync=False), ParquetEncoder(),
                        error_sink=FileSink(str(err), fsync=False),
                        settings=PipelineSettings(batch=BatchLimits(max_bytes=50_000),
                                                  workers=2))
    snap = pipeline.run().snapshot()
    assert len(rows(out)) == 2997
    assert snap["received"] == snap["acked"] == 3000
    assert snap["rejected"] == 1 and snap["nacked"] == 0
    assert snap["messages_written"] == snap["rows_written"] == 2997
    meta = [pq.read_metadata(f).metadata for f in out.rglob("*.parquet")]
    assert sum(int(m[b"ingest.messages"]) for m in meta) == 2997


# ------------------------------------------------------------- the contract, for any source


class _BlockSource:
    """A third-party source of blocks: two blocks of three lines, split on request."""

    def __init__(self) -> None:
        self.blocks = [_Block3(b'{"id": 1}\n{"id": 2}\n{"id": 3}'),
                       _Block3(b'{"id": 4}\nnope\n{"id": 6}')]
        self.multi: bool | None = None
        self.acked: list[str] = []
        self.nacked: list[str] = []

    def start(self, context: RunContext) -> None:
        self.multi = context.multi_record

    def receive(self, max_messages: int, timeout: float) -> list[Message]:
        out, self.blocks = self.blocks, []
        return out

    def split(self, message: Message) -> list[Message]:
        start = int(message.body[7:8])  # the first line's id
        return [Message(f"line:{start + i}", line)
                for i, line in enumerate(message.body.split(b"\n"))]

    def ack(self, messages: list[Message]) -> None:
        self.acked += [m.id for m in messages]

    def nack(self, messages: list[Message], delay: float | None = None) -> None:
        self.nacked += [m.id for m in messages]

    @property
    def exhausted(self) -> bool:
        return not self.blocks

    def close(self) -> None:
        pass


def test_any_source_with_split_gets_its_rejected_lines_back_one_by_one(tmp_path: Path) -> None:
    from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder

    source = _BlockSource()
    pipeline = Pipeline(source, FileSink(str(tmp_path / "out"), fsync=False), JsonlEncoder(),
                        error_sink=FileSink(str(tmp_path / "err"), fsync=False),
                        settings=PipelineSettings(workers=1))
    metrics = pipeline.run()
    assert source.multi is True
    written = sorted(json.loads(line)["id"] for f in (tmp_path / "out").rglob("*.jsonl")
                     for line in f.read_text().splitlines())
    assert written == [1, 2, 3, 4, 6]
    assert [(r["message_id"], r["body"]) for r in errors(tmp_path / "err")] == [("line:5", "nope")]
    # the clean block is acked whole; the other one line by line, the bad line after its write
    assert sorted(source.acked) == ["b:1-3", "line:4", "line:5", "line:6"]
    assert source.nacked == []
    assert metrics.snapshot()["acked"] == 6


def test_a_block_rejected_only_when_its_batch_is_flushed_again_is_split_too(
        tmp_path: Path) -> None:
    """The first pass may change what fits (a column's type), so a block that passed it can
    be rejected on the line-by-line pass: it is split in turn, not sent to the error sink
    whole (simulated here: the clean block is rejected the second time it is seen)."""
    from collections import Counter

    from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
    from parquet_ingestor.interfaces import FunctionTransformer

    source = _BlockSource()
    clean = source.blocks[0].body
    seen: Counter[bytes] = Counter()

    def parse(message: Message) -> list[dict[str, Any]]:
        seen[message.body] += 1
        if message.body == clean and seen[clean] > 1:
            raise ValueError("a column changed under it")
        return [json.loads(line) for line in message.body.split(b"\n")]

    pipeline = Pipeline(source, FileSink(str(tmp_path / "out"), fsync=False), JsonlEncoder(),
                        FunctionTransformer(parse),
                        error_sink=FileSink(str(tmp_path / "err"), fsync=False),
                        settings=PipelineSettings(workers=1))
    metrics = pipeline.run()
    written = sorted(json.loads(line)["id"] for f in (tmp_path / "out").rglob("*.jsonl")
                     for line in f.read_text().splitlines())
    assert written == [1, 2, 3, 4, 6]
    assert [r["message_id"] for r in errors(tmp_path / "err")] == ["line:5"]
    assert sorted(source.acked) == [f"line:{i}" for i in range(1, 7)]
    assert metrics.snapshot()["acked"] == 6


def test_hostile_lines_inside_blocks_are_rejected_alone(tmp_path: Path) -> None:
    """A line nested 10,000 deep (it crashed the JSON reader) or with too many keys, inside
    a block of good lines: rejected alone with its reason, the process survives."""
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    deep = b'{"x":' * 10_000 + b"1" + b"}" * 10_000
    wide = b"{" + b",".join(b'"k%d":1' % i for i in range(10_001)) + b"}"
    moderately_deep = b'{"x":' * 100 + b"1" + b"}" * 100  # short: caught from the schema
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(600, {100: deep, 300: wide, 500: moderately_deep}))
    source = FileSource(str(path))
    pipeline = Pipeline(source, FileSink(str(tmp_path / "out"), fsync=False), ParquetEncoder(),
                        error_sink=FileSink(str(tmp_path / "err"), fsync=False),
                        settings=PipelineSettings(batch=BatchLimits(max_bytes=1 << 20),
                                                  workers=1))
    pipeline.run()
    assert rows(tmp_path / "out") == [{"id": i, "n": i} for i in range(1, 601)
                                      if i not in (100, 300, 500)]
    reasons = {r["message_id"]: r["reason"] for r in errors(tmp_path / "err")}
    assert set(reasons) == {f"{path}:100", f"{path}:300", f"{path}:500"}
    assert "max_depth" in reasons[f"{path}:100"] and "max_depth" in reasons[f"{path}:500"]
    assert "max_keys" in reasons[f"{path}:300"]


def test_a_line_of_a_split_block_is_read_again_without_its_body(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(events(3000))
    source = started(path)
    blocks = drain(source)
    middle = blocks[len(blocks) // 2]
    lines = source.split(middle)
    kept = lines[3].body
    for line in lines:
        line.body = b""  # written into an open file, which then failed
    source.nack(lines[3:4], 0)
    [again] = source.receive(10, 1.0)
    assert again.id == lines[3].id and again.body == kept
