"""The file source settles without the body: a line whose body the core dropped (its rows are
in open files) is read again from the file when it is nacked, or spilled at close."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from parquet_ingestor.builtins.file_source import FileSource


def lines(n: int) -> list[bytes]:
    return [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i % 97)) for i in range(n)]


def write(path: Path, body: bytes) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(body)
    else:
        path.write_bytes(body)
    return str(path)


@pytest.mark.parametrize("name,newline", [("a.jsonl", b"\n"), ("b.jsonl", b"\r\n"),
                                          ("c.jsonl.gz", b"\n")])
def test_a_nacked_line_without_its_body_comes_back_whole(tmp_path: Path, name: str,
                                                         newline: bytes) -> None:
    expected = lines(30_000)  # several 1 MiB blocks
    body = newline.join(expected[:100]) + newline + newline + newline.join(expected[100:])
    source = FileSource(write(tmp_path / name, body))
    assert source.settles_without_body
    got = []
    while batch := source.receive(5000, 0.0):
        got += batch
    assert [m.body for m in got] == expected
    originals = {m.id: m.body for m in got}
    picked = list(dict.fromkeys([*got[::997], got[-1], got[100]]))
    for message in got:
        message.body = b""  # what the core does once the rows are encoded
    source.ack([m for m in got if m not in set(picked)])
    source.nack(picked)
    again = source.receive(5000, 0.0)
    assert sorted(m.id for m in again) == sorted(m.id for m in picked)
    assert all(m.body == originals[m.id] for m in again)
    for message in again:
        message.body = b""
    source.close()  # held without bodies: spilled with them
    assert sorted(m.body for m in source.unwritten) == sorted(originals[m.id] for m in picked)


def test_stdin_keeps_its_bodies() -> None:
    assert not FileSource("-").settles_without_body
