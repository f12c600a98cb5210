"""Pieces of one batch parsed separately (bisected halves) whose inferred types differ.

Only *new* fields are settled here (known ones follow the dataset schema, :mod:`.dataset`):
under ``evolve`` a new field whose pieces disagree (string vs struct, number vs string) becomes
``string``: numbers as their JSON text (``2.50`` stays ``"2.50"``, read again from the lines of
those rows only), booleans as ``true``/``false``, lists and structs as compact JSON. No row is
lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .dataset import _without_nulls, json_text
from .rawjson import JsonNumber, RawLines


def unify_new_columns(
    parts: list[pa.Table], known: set[str], raw: Sequence[RawLines] | None = None,
    lowercase: bool = False,
) -> list[pa.Table]:
    """Pieces of one batch, with each *new* column (not in ``known``) whose types conflict
    between pieces turned to text (evolve's rule); known columns are left to the dataset
    schema, which converts or rejects value by value. ``raw``: each piece's lines, where a
    number's JSON text is read; ``lowercase``: names are compared in lower case (s3tables)."""
    fold = str.lower if lowercase else str
    conflicts = {name for name in _conflicting_columns(parts, fold) if name not in known}
    if not conflicts:
        return parts
    lines = list(raw) if raw is not None else [None] * len(parts)
    return [_to_strings(p, [n for n in p.column_names if fold(n) in conflicts], r)
            for p, r in zip(parts, lines, strict=True)]


def _conflicting_columns(parts: list[pa.Table], fold: Any = str) -> list[str]:
    types: dict[str, list[pa.DataType]] = {}
    for part in parts:
        for field in part.schema:
            if _without_nulls(field.type) is not None:  # [], {}, null: no type to conflict
                types.setdefault(fold(field.name), []).append(field.type)
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


def _to_strings(table: pa.Table, names: list[str], raw: RawLines | None) -> pa.Table:
    for name in names:
        table = _to_string(table, name, raw)
    return table


def _to_string(table: pa.Table, name: str, raw: RawLines | None) -> pa.Table:
    column = table.column(name)
    kind = column.type
    if pa.types.is_string(kind):
        return table
    if pa.types.is_floating(kind) and raw is not None:
        return _replace(table, name, _number_texts(name, column, raw))
    if pa.types.is_nested(kind):
        text = pa.array([json_text(v) for v in column.to_pylist()], pa.string())
        return _replace(table, name, text)
    try:
        return _replace(table, name, pc.cast(column, pa.string()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        text = pa.array([json_text(v) for v in column.to_pylist()], pa.string())
        return _replace(table, name, text)


def _number_texts(name: str, column: pa.ChunkedArray, raw: RawLines) -> pa.Array:
    """A double column as the numbers' JSON text (``2.50``, ``1e3``, ``1700000000.0``), read
    again from the lines of the rows that hold one. A row whose line does not hold the number
    keeps the double's shortest text (Arrow's), which reads back as the same double."""
    texts = pc.cast(column, pa.string()).combine_chunks().to_pylist()
    positions = pc.indices_nonzero(pc.is_valid(column)).to_pylist()
    for pos, value in raw.values(name, positions, text=True).items():
        if isinstance(value, JsonNumber):
            texts[pos] = str(value)
    return pa.array(texts, pa.string())
