"""Encoder ``jsonl``: JSON lines, optionally gzip-compressed; decodes with ``json.loads``."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import IO, Any, BinaryIO

from ..interfaces import Decoded, Frame
from ..records import JsonLines, ListFrame, RecordList


class JsonlEncoder:
    content_type = "application/x-ndjson"

    def __init__(self, compression: str = "none") -> None:
        self.compression = compression
        self.extension = "jsonl.gz" if compression == "gzip" else "jsonl"

    def decode(self, records: Any) -> Decoded:
        rejected: list[tuple[int, str]] = []
        if isinstance(records, JsonLines):
            records, rejected = records.decode()
        if not isinstance(records, RecordList):
            raise TypeError(f"jsonl encoder cannot read {type(records).__name__}")
        return Decoded(ListFrame(records.rows, records.sources), rejected)

    def open(self, stream: BinaryIO, frame: Frame) -> _JsonlWriter:
        return _JsonlWriter(stream, self.compression == "gzip")


class _JsonlWriter:
    def __init__(self, stream: BinaryIO, compress: bool) -> None:
        self._gzip = gzip.GzipFile(fileobj=stream, mode="wb") if compress else None
        self._out: IO[bytes] = self._gzip if self._gzip is not None else stream  # type: ignore[assignment]
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                       default=str).encode

    def write(self, frame: Frame) -> None:
        if not isinstance(frame, ListFrame):
            raise TypeError("jsonl encoder writes ListFrame frames")
        dumps = self._dumps
        chunk: list[str] = []
        for row in frame.rows:
            chunk.append(dumps(row))
            if len(chunk) >= 4096:
                self._out.write(("\n".join(chunk) + "\n").encode("utf-8"))
                chunk.clear()
        if chunk:
            self._out.write(("\n".join(chunk) + "\n").encode("utf-8"))

    def close(self, metadata: Mapping[str, str]) -> None:
        if self._gzip is not None:
            self._gzip.close()  # writes the trailer; does not close the underlying stream
