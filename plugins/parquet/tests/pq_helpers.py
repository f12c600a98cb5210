"""Helpers for the parquet encoder tests (imported as ``pq_helpers`` via conftest.py): sample records, writing a file, reading it back three ways."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from parquet_ingestor.records import JsonLines, RecordList
from parquet_ingestor_parquet.encoder import ParquetEncoder
from parquet_ingestor_parquet.frame import ArrowFrame

UTC = dt.UTC

# Nested data with everything that tends to break: nulls at every level, unicode, ints > 2**31,
# timestamps with and without fractions/offsets, empty lists, missing keys.
NESTED_RECORDS: list[dict[str, Any]] = [
    {"id": 1, "name": "plain", "big": 2**40 + 7, "score": 1.5, "ok": True,
     "at": "2024-05-01T10:15:30.123456Z", "tags": ["a", "b"],
     "ctx": {"ip": "10.0.0.1", "ua": "curl/8", "geo": {"lat": 52.5, "lon": 13.4}}},
    {"id": 2, "name": "ünïcødé ✓ 日本語 🚀", "big": -(2**62), "score": None, "ok": False,
     "at": "2024-05-01T23:59:59+02:00", "tags": [],
     "ctx": {"ip": None, "ua": "é", "geo": None}},
    {"id": 3, "name": None, "big": None, "score": -0.25, "ok": None,
     "at": None, "tags": None, "ctx": None},
    {"id": 4, "name": "quote \" backslash \\ newline \\n tab \t", "big": 2**63 - 1, "score": 1e300,
     "ok": True, "at": "2024-05-02T00:00:00Z", "tags": ["x", None, "z"],
     "ctx": {"ip": "::1", "ua": None, "geo": {"lat": None, "lon": 0.0}}},
    {"id": 5, "name": "missing keys"},
]

NESTED_SPEC = {
    "id": "int64", "name": "string", "big": "int64", "score": "float64", "ok": "bool",
    "at": "timestamp[us, UTC]", "tags": "list<string>",
    "ctx": "struct<ip: string, ua: string, geo: struct<lat: float64, lon: float64>>",
}
COLUMNS = list(NESTED_SPEC)


def expected_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a reader must give back: every column present, times as aware UTC datetimes."""
    out = []
    for record in records:
        row = {name: record.get(name) for name in COLUMNS}
        if isinstance(row["at"], str):
            row["at"] = dt.datetime.fromisoformat(row["at"].replace("Z", "+00:00")).astimezone(UTC)
        if row["ctx"] is not None and "geo" not in row["ctx"]:
            row["ctx"] = {**row["ctx"], "geo": None}
        out.append(row)
    return out


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


def as_stored(record: dict[str, Any]) -> dict[str, Any]:
    """A JSON record as the encoder stores it: top-level ISO instants (with a zone) become
    aware UTC datetimes; everything else is unchanged."""
    out = {}
    for key, value in record.items():
        if isinstance(value, str) and _INSTANT.match(value):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        out[key] = value
    return out


def json_lines(records: list[dict[str, Any]], spec: Mapping[str, str] | None = None) -> JsonLines:
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    return JsonLines(lines, list(range(len(lines))), schema=spec)


def record_list(records: list[dict[str, Any]]) -> RecordList:
    return RecordList([dict(r) for r in records], list(range(len(records))))


def write_file(encoder: ParquetEncoder, frame: ArrowFrame, path: Path,
               metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``frame`` through the encoder's FrameWriter into ``path``, as the pipeline does."""
    with open(path, "wb") as stream:
        writer = encoder.open(stream, frame)
        writer.write(frame)
        writer.close(metadata or {"ingest.records": str(len(frame))})
        assert not stream.closed, "the FrameWriter must leave the sink's stream open"
    return path


def normalize(value: Any) -> Any:
    """Reader output -> plain Python (numpy arrays, pandas NA/Timestamps, JSON text of nested)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [normalize(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value


def _unjson(row: dict[str, Any]) -> dict[str, Any]:
    """fastparquet stores nested columns as JSON text: decode those back to Python values."""
    out = {}
    for key, value in row.items():
        if isinstance(value, bytes):
            value = value.decode()
        if key in ("tags", "ctx") and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


def read_pyarrow(path: Path) -> list[dict[str, Any]]:
    return [_unjson(normalize(r)) for r in pq.read_table(path).to_pylist()]


def read_duckdb(path: Path) -> list[dict[str, Any]]:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        rel = con.sql(f"SELECT * FROM read_parquet('{path}')")
        names = rel.columns
        return [_unjson(normalize(dict(zip(names, row, strict=True)))) for row in rel.fetchall()]
    finally:
        con.close()


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    """fastparquet's reader flattens structs into ``a.b`` columns: put them back together.

    It cannot tell a null struct from a struct of nulls, so an all-null struct reads as None.
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return {k: _collapse(v) for k, v in out.items()}


def _collapse(value: Any) -> Any:
    if isinstance(value, dict):
        inner = {k: _collapse(v) for k, v in value.items()}
        return None if all(v is None for v in inner.values()) else inner
    return value


def read_fastparquet(path: Path) -> list[dict[str, Any]]:
    import fastparquet

    frame = fastparquet.ParquetFile(str(path)).to_pandas()
    rows = frame.to_dict(orient="records")
    return [_unjson(_nest(normalize(r))) for r in rows]


READERS = {"pyarrow": read_pyarrow, "duckdb": read_duckdb, "fastparquet": read_fastparquet}
