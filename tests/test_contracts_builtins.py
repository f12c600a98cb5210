"""The built-in components pass the same conformance suites third-party plugins use."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor import Message
from parquet_ingestor.builtins.file_sink import FileSink
from parquet_ingestor.builtins.file_source import FileSource
from parquet_ingestor.builtins.json_transformer import JsonTransformer
from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
from parquet_ingestor.interfaces import Sink, Source
from parquet_ingestor.testing import (
    EncoderContract,
    SinkContract,
    SourceContract,
    StoredObject,
    TransformerContract,
)


class TestFileSourceContract(SourceContract):
    reopen_resumes = False  # a new reader of a file starts at its first line

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    def make_source(self, bodies: list[bytes]) -> Callable[[], Source]:
        path = self.tmp / "in.jsonl"
        path.write_bytes(b"".join(b + b"\n" for b in bodies))
        return lambda: FileSource(str(path))


class TestFileSinkContract(SinkContract):
    stores_metadata = False  # a directory keeps bytes only

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.root = tmp_path / "out"

    def make_sink(self) -> Sink:
        return FileSink(str(self.root))

    def read_stored(self, sink: Sink, key: str) -> StoredObject | None:
        path = self.root / key
        return StoredObject(path.read_bytes()) if path.exists() else None

    def test_no_temporary_files_left(self) -> None:
        sink = self.make_sink()
        w = sink.open("x/y.bin", "application/octet-stream", {})
        w.write(b"data")
        w.abort()
        w = sink.open("x/z.bin", "application/octet-stream", {})
        w.write(b"data")
        w.commit()
        assert sorted(p.name for p in (self.root / "x").iterdir()) == ["z.bin"]


class TestJsonlEncoderContract(EncoderContract):
    def make_encoder(self) -> JsonlEncoder:
        return JsonlEncoder()

    def read_back(self, data: bytes) -> list[dict[str, Any]]:
        return [json.loads(line) for line in io.BytesIO(data)]


class TestJsonTransformerContract(TransformerContract):
    def make_transformer(self) -> JsonTransformer:
        return JsonTransformer()

    def good_messages(self) -> list[Message]:
        return [Message(f"g{i}", json.dumps({"i": i}).encode()) for i in range(6)]

    def bad_messages(self) -> list[Message]:
        return [Message("b0", b"not json"), Message("b1", b"[1, 2]"), Message("b2", b""),
                Message("b3", b'{"broken": '), Message("b4", b"\xff\xfe{")]
