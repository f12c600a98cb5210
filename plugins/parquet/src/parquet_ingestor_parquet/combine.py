"""Putting together tables parsed separately (bisected halves) whose inferred schemas differ.

Compatible differences are promoted (int64 + double -> double, null -> anything, structs gain
fields). Incompatible ones (string vs struct, number vs string) are settled per policy:

* evolve: the column becomes ``string``; numbers and booleans are cast, lists and structs are
  written as JSON text. No row is lost.
* strict: the column keeps the type holding the most non-null values; rows that carry a value of
  another type are rejected with a reason.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def concat(parts: list[pa.Table], strict: bool) -> tuple[pa.Table, list[tuple[int, str]]]:
    """One table from ``parts``, and the row positions (in it, before removal) to reject."""
    if len(parts) == 1:
        return parts[0], []
    first = parts[0].schema
    if all(p.schema.equals(first) for p in parts):
        return pa.concat_tables(parts), []
    try:
        return pa.concat_tables(parts, promote_options="permissive"), []
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    rejected: list[tuple[int, str]] = []
    for name in _conflicting_columns(parts):
        if strict:
            parts, bad = _keep_majority(parts, name)
            rejected.extend(bad)
        else:
            parts = [_to_string(p, name) for p in parts]
    return pa.concat_tables(parts, promote_options="permissive"), rejected


def unify_new_columns(parts: list[pa.Table], known: set[str]) -> list[pa.Table]:
    """Pieces of one batch, with each *new* column (not in ``known``) whose types conflict
    between pieces turned to text (evolve's rule); known columns are left to the dataset
    schema, which converts or rejects value by value."""
    conflicts = [name for name in _conflicting_columns(parts) if name not in known]
    for name in conflicts:
        parts = [_to_string(p, name) for p in parts]
    return parts


def _conflicting_columns(parts: list[pa.Table]) -> list[str]:
    types: dict[str, list[pa.DataType]] = {}
    for part in parts:
        for field in part.schema:
            types.setdefault(field.name, []).append(field.type)
    conflicts = []
    for name, kinds in types.items():
        try:
            pa.unify_schemas([pa.schema([pa.field(name, k)]) for k in kinds],
                             promote_options="permissive")
        except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            conflicts.append(name)
    return conflicts


def _replace(table: pa.Table, name: str, column: pa.Array | pa.ChunkedArray) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, pa.field(name, column.type), column)


def json_text(value: Any) -> str | None:
    """A nested value as compact JSON text (what evolve writes when a column's type conflicts)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date):  # a Python datetime or date: ISO-8601, an instant if aware
        return value.isoformat()
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def _to_string(table: pa.Table, name: str) -> pa.Table:
    if name not in table.column_names:
        return table
    column = table.column(name)
    kind = column.type
    if pa.types.is_string(kind):
        return table
    if pa.types.is_nested(kind):
        text = pa.array([json_text(v) for v in column.to_pylist()], pa.string())
        return _replace(table, name, text)
    try:
        return _replace(table, name, pc.cast(column, pa.string()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = pa.array([json_text(v) for v in column.to_pylist()], pa.string())
        return _replace(table, name, text)


def _keep_majority(
    parts: list[pa.Table], name: str
) -> tuple[list[pa.Table], list[tuple[int, str]]]:
    votes: Counter[pa.DataType] = Counter()
    for part in parts:
        if name in part.column_names:
            column = part.column(name)
            votes[column.type] += len(column) - column.null_count
    winner = votes.most_common(1)[0][0]
    rejected: list[tuple[int, str]] = []
    out = []
    offset = 0
    for part in parts:
        if name in part.column_names and not _compatible(part.column(name).type, winner):
            column = part.column(name)
            valid = pc.is_valid(column).to_pylist()
            reason = (f"field '{name}' is {column.type}, but the batch's type for it is "
                      f"{winner}")
            rejected.extend((offset + i, reason) for i, ok in enumerate(valid) if ok)
            part = _replace(part, name, pa.nulls(part.num_rows, winner))
        out.append(part)
        offset += part.num_rows
    return out, rejected


def _compatible(kind: pa.DataType, target: pa.DataType) -> bool:
    try:
        pa.unify_schemas([pa.schema([pa.field("x", kind)]), pa.schema([pa.field("x", target)])],
                         promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True
