"""The built-in file source, file sink, json transformer and jsonl encoder, beyond their contracts:
path safety, redelivery limits, gzip, globs, transformer options."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.file_source import FileSource
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.message import Message
from parquet_ingestor.records import JsonLines


def drain(source: FileSource) -> list[Message]:
    out: list[Message] = []
    while not source.exhausted:
        out += source.receive(7, 0.0)
    return out


# ---------------------------------------------------------------- file sink


@pytest.mark.parametrize("key", ["../x.jsonl", "/etc/x.jsonl", "a/../../x.jsonl", "a//b.jsonl",
                                 "./x.jsonl", "a/./b.jsonl", "x\x00.jsonl", ""])
def test_file_sink_refuses_escaping_keys(tmp_path: Path, key: str) -> None:
    sink = FileSink(str(tmp_path / "root"), fsync=False)
    with pytest.raises(ValueError, match="unsafe key"):
        sink.open(key, "application/x-ndjson", {})
    assert not (tmp_path / "x.jsonl").exists()


def test_file_sink_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    sink = FileSink(str(root), fsync=False)
    with pytest.raises(PermissionError, match="outside the sink root"):
        sink.open("link/x.jsonl", "application/x-ndjson", {})
    assert list(outside.iterdir()) == []


def test_file_sink_refuses_to_follow_a_symlinked_target(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (root / "d" / "x.jsonl").symlink_to(victim)
    writer = FileSink(str(root), fsync=True).open("d/x.jsonl", "t", {})
    writer.write(b"data\n")
    writer.commit()  # rename replaces the link itself, never writes through it
    assert victim.read_text() == "keep"
    assert (root / "d" / "x.jsonl").read_bytes() == b"data\n"


def test_file_sink_is_invisible_until_commit_and_abort_leaves_nothing(tmp_path: Path) -> None:
    sink = FileSink(str(tmp_path), fsync=True)
    writer = sink.open("2024/05/01/a.jsonl", "t", {})
    writer.write(b"one\n")
    writer.write(memoryview(b"two\n"))
    target = tmp_path / "2024/05/01/a.jsonl"
    assert not target.exists()
    writer.commit()
    assert target.read_bytes() == b"one\ntwo\n"
    aborted = sink.open("2024/05/01/b.jsonl", "t", {})
    aborted.write(b"half")
    aborted.abort()
    aborted.abort()  # idempotent
    assert sorted(p.name for p in (tmp_path / "2024/05/01").iterdir()) == ["a.jsonl"]
    assert sink.url("2024/05/01/a.jsonl") == target.as_uri()


def test_file_sink_bad_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="sink 'file' option 'path'"):
        FileSink(str(blocker / "sub"))


# ---------------------------------------------------------------- file source


def test_file_source_directory_glob_and_gzip(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.jsonl").write_bytes(b'{"n": 1}\n\n{"n": 2}\r\n')
    with gzip.open(tmp_path / "d" / "sub" / "b.jsonl.gz", "wb") as handle:
        handle.write(b'{"n": 3}\n{"n": 4}')  # no final newline
    (tmp_path / "d" / "notes.txt").write_text("ignored\n")
    got = drain(FileSource(str(tmp_path / "d")))
    assert [json.loads(m.body)["n"] for m in got] == [1, 2, 3, 4]
    assert got[0].id.endswith("a.jsonl:1") and got[1].id.endswith("a.jsonl:3")
    assert len({m.id for m in got}) == 4
    globbed = drain(FileSource(str(tmp_path / "d" / "*.jsonl")))
    assert [json.loads(m.body)["n"] for m in globbed] == [1, 2]


@pytest.mark.parametrize("path", ["missing.jsonl", "nothing-*.jsonl"])
def test_file_source_missing_paths(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigError, match="source 'file' option 'path'"):
        FileSource(str(tmp_path / path))


def test_file_source_redelivers_nacked_lines_then_reports_them(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(b'{"n": 1}\n{"n": 2}\n')
    source = FileSource(str(tmp_path / "in.jsonl"), max_deliveries=3)
    first = source.receive(10, 0)
    assert len(first) == 2
    source.ack(first[:1])
    bad = first[1]
    deliveries = 1
    source.nack([bad])
    while not source.exhausted:
        again = source.receive(10, 0)
        assert again == [bad]
        deliveries += 1
        source.nack(again)
    assert deliveries == 3
    assert source.failed == [bad]
    source.close()


def test_file_source_honours_a_nack_delay_and_stays_alive_meanwhile(tmp_path: Path) -> None:
    """A line nacked with a delay comes back no sooner, keeps the source from being exhausted
    while it waits, counts its deliveries, and is saved to the spill file if the run stops
    before it came back."""
    (tmp_path / "in.jsonl").write_bytes(b'{"n": 1}\n{"n": 2}\n')
    spill = tmp_path / "spill.jsonl"
    source = FileSource(str(tmp_path / "in.jsonl"), max_deliveries=3, spill=str(spill))
    first = source.receive(10, 0)
    assert [m.deliveries for m in first] == [None, None]
    source.ack(first[:1])
    assert source.receive(10, 0) == [] and source.exhausted  # all read, nothing waits
    source.nack(first[1:], 0.3)
    assert source.receive(10, 0) == [] and not source.exhausted  # waiting: still alive
    again: list[Message] = []
    while not again:  # receive waits (up to its timeout) for the line to be due
        again = list(source.receive(10, 5.0))
    assert again == first[1:] and again[0].deliveries == 2
    source.nack(again, 60)  # the run stops before it comes back
    assert not source.exhausted
    source.close()
    assert source.failed == first[1:] and spill.read_bytes() == b'{"n": 2}\n'


# ---------------------------------------------------------------- json transformer, jsonl encoder


def test_json_transformer_lines_mode_and_attributes() -> None:
    messages = [
        Message("m1", b'{"a": 1}\n\n{"a": 2}\r\n', {"sent_timestamp": "111"}),
        Message("m2", b'{"a": 3}\n[4]\n'),
        Message("m3", b'{"a": 5}'),
    ]
    result = JsonTransformer(lines=True, add_attributes=["message_id", "sent_timestamp"]
                             ).transform(messages)
    assert [r.message.id for r in result.rejected] == ["m2"]
    records = result.records
    assert isinstance(records, JsonLines)
    decoded, rejected = records.decode()
    assert rejected == []
    assert decoded.rows == [
        {"a": 1, "_message_id": "m1", "_sent_timestamp": "111"},
        {"a": 2, "_message_id": "m1", "_sent_timestamp": "111"},
        {"a": 5, "_message_id": "m3", "_sent_timestamp": None},
    ]
    assert decoded.sources == [0, 0, 2]


def test_json_transformer_pretty_printed_object_is_one_record() -> None:
    body = b'{\n  "a": 1,\n  "b": "x"\n}\n'
    result = JsonTransformer().transform([Message("m", body)])
    decoded, rejected = result.records.decode()
    assert decoded.rows == [{"a": 1, "b": "x"}] and rejected == []


def test_json_transformer_marks_one_line_batches_only_when_every_body_is_one() -> None:
    """``JsonLines.one_line`` lets the decoder skip its own line-break scan: it is set only
    when every body is an object on one line, and a batch with a CR, an LF or a leading space
    still decodes to one row per message."""
    clean = JsonTransformer().transform([Message("a", b'{"a": 1}'), Message("b", b'{"a": 2}')])
    assert clean.records.one_line is True
    for odd in (b'{"a":\n 2}', b'{"a": 2}\r', b' {"a": 2}'):
        result = JsonTransformer().transform([Message("a", b'{"a": 1}'), Message("b", odd)])
        assert result.records.one_line is False and not result.rejected
        decoded, rejected = result.records.decode()
        assert decoded.rows == [{"a": 1}, {"a": 2}] and rejected == []


def test_json_transformer_schema_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        JsonTransformer(schema=str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(ConfigError, match="every type must be a name"):
        JsonTransformer(schema=str(tmp_path / "bad.json"))
    (tmp_path / "ok.json").write_text('{"a": "int64"}')
    assert JsonTransformer(schema=str(tmp_path / "ok.json")).schema == {"a": "int64"}


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_jsonl_encoder_round_trip(compression: str) -> None:
    encoder = JsonlEncoder(compression)
    rows = [{"id": i, "text": "é\u2028\n", "nested": {"x": [1, None]}} for i in range(5000)]
    records = JsonLines([json.dumps(r).encode() for r in rows], list(range(5000)))
    decoded = encoder.decode(records)
    out = io.BytesIO()
    writer = encoder.open(out, decoded.frame)  # type: ignore[arg-type]
    writer.write(decoded.frame)
    writer.close({})
    data = out.getvalue()
    if compression == "gzip":
        assert encoder.extension == "jsonl.gz"
        data = gzip.decompress(data)
    else:
        assert encoder.extension == "jsonl"
    assert [json.loads(line) for line in data.split(b"\n") if line] == rows


def test_file_source_counts_lines_nacked_but_not_redelivered_as_failed(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    source = FileSource(str(path))
    got = list(source.receive(10, 0.1))
    source.ack(got[:1])
    source.nack(got[1:])  # e.g. rejected in the final flush after SIGTERM
    source.close()
    assert [m.id for m in source.failed] == [got[1].id]
