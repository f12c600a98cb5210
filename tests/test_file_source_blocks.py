"""The file source reads blocks of lines: ids, blank lines, CRLF and block edges stay exact."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from parquet_ingestor.builtins import file_source
from parquet_ingestor.builtins.file_source import FileSource
from parquet_ingestor.message import Message


def drain(source: FileSource, step: int) -> list[tuple[str, bytes]]:
    out = []
    while not source.exhausted:
        out += [(m.id, m.body) for m in source.receive(step, 0.0)]
    source.close()
    return out


def expected(path: Path, data: bytes) -> list[tuple[str, bytes]]:
    """What the line-by-line reader gave: physical line numbers, blank lines skipped."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return [(f"{path}:{n}", line.rstrip(b"\r")) for n, line in enumerate(lines, 1)
            if line.rstrip(b"\r").strip()]


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
@pytest.mark.parametrize("step", [1, 3, 1000])
def test_blocks_match_line_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   block: int, step: int) -> None:
    monkeypatch.setattr(file_source, "_BLOCK", block)
    data = (b'{"a":1}\n\n{"b":2}\r\n   \n' + b'{"long":"' + b"x" * 150 + b'"}\n'
            + b"\t\n" + b''.join(b'{"i":%d}\n' % i for i in range(40)) + b'{"last":true}')
    path = tmp_path / "e.jsonl"
    path.write_bytes(data)
    assert drain(FileSource(str(path)), step) == expected(path, data)


def test_gzip_and_several_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_source, "_BLOCK", 16)
    one = b"".join(b'{"n":%d}\n' % i for i in range(30))
    with gzip.open(tmp_path / "a.jsonl.gz", "wb") as handle:
        handle.write(one)
    (tmp_path / "b.jsonl").write_bytes(b'{"z":1}\r\n\r\n{"z":2}\n')
    got = drain(FileSource(str(tmp_path)), 7)
    assert got == (expected(tmp_path / "a.jsonl.gz", one)
                   + expected(tmp_path / "b.jsonl", b'{"z":1}\r\n\r\n{"z":2}\n'))
    assert got[-1] == (f"{tmp_path / 'b.jsonl'}:3", b'{"z":2}')


def test_nacked_lines_come_back_first(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"".join(b'{"n":%d}\n' % i for i in range(10)))
    source = FileSource(str(path))
    first = source.receive(4, 0.0)
    source.nack(first[:2])
    again = source.receive(4, 0.0)
    assert [m.id for m in again] == [first[0].id, first[1].id, f"{path}:5", f"{path}:6"]
    source.close()


def test_line_ids_are_made_on_demand_and_can_be_set(tmp_path: Path) -> None:
    """Lines carry their number, not an id string; the id reads as ``path:N`` (blank lines
    counted), and a source or test that sets it keeps what it set."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\n')
    source = FileSource(str(path))
    first, second = source.receive(10, 0.0)
    assert (first.id, second.id) == (f"{path}:1", f"{path}:3")
    assert isinstance(first, Message) and repr(first) == f"Message(id='{path}:1', size=8)"
    second.id = "renamed"
    assert second.id == "renamed"
    source.ack([first, second])
    source.close()
