"""Helpers for the Iceberg sink tests: Parquet files as our encoder writes them, and two
independent readers of a table (pyiceberg's scan, and DuckDB over the files the scan lists)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def parquet_bytes(rows: Sequence[dict[str, Any]], schema: pa.Schema | None = None) -> bytes:
    """One Parquet file holding ``rows``."""
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), buffer)
    return buffer.getvalue()


def write_file(target: Any, key: str, rows: Sequence[dict[str, Any]],
               schema: pa.Schema | None = None, chunk: int = 1000) -> Any:
    """Stream one file into a sink or transaction (in chunks, as the encoder does); staged."""
    writer = target.open(key, "application/vnd.apache.parquet", {})
    data = memoryview(parquet_bytes(rows, schema))
    for start in range(0, len(data), chunk):
        writer.write(data[start:start + chunk])
    writer.commit()
    return writer


def scan_rows(table: Any) -> list[dict[str, Any]]:
    """Every row, read by pyiceberg."""
    return table.refresh().scan().to_arrow().to_pylist()


def duckdb_rows(table: Any, fetch: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """Every row, read by DuckDB from the data files pyiceberg's scan lists (``fetch`` turns a
    remote path into a local copy)."""
    duckdb = pytest.importorskip("duckdb")
    paths = [task.file.file_path for task in table.refresh().scan().plan_files()]
    local = [fetch(p) if fetch else p.removeprefix("file://") for p in paths]
    if not local:
        return []
    con = duckdb.connect()
    try:
        cursor = con.execute("SELECT * FROM read_parquet(?, union_by_name = true)", [local])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def by_id(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])
