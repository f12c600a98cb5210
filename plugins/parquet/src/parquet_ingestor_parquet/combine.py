"""Pieces of one batch parsed separately (bisected halves) whose inferred types differ.

Only *new* fields are settled here (known ones follow the dataset schema, :mod:`.dataset`):
under ``evolve`` a new field whose pieces disagree (string vs struct, number vs string) becomes
``string``: numbers and booleans as their text, lists and structs as compact JSON. No row is lost.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .dataset import _without_nulls


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
            if _without_nulls(field.type) is not None:  # [], {}, null: no type to conflict
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
