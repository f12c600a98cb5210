"""Python dicts -> Arrow table (the ``RecordList`` path), rejecting rows instead of failing.

The fast path is one ``pa.array`` over the dicts with a struct type: the schema's, or the type
inferred for the previous batch when this batch has exactly its keys (converting to a known type
costs ~0.9 us a row, inferring it first ~1.9 us). Without either, one C++ pass infers every
column. All of it runs with the cyclic GC paused (it allocates millions of objects and the
collector would rescan them all). When a column will not convert as a whole, that column alone
is rebuilt value by value to find the rows that do not fit.
"""

from __future__ import annotations

from collections import Counter
from itertools import chain, repeat
from typing import Any

import pyarrow as pa
from parquet_ingestor.eventtime import instant
from parquet_ingestor.gcpause import gc_paused

from .dataset import EXACT_INTS, json_text

_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError,
                      TypeError, ValueError, OverflowError)

def table_from_rows(
    rows: list[dict[str, Any]], schema: pa.Schema | None, keep_extra: bool, strict: bool,
    previous: pa.StructType | None = None,
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Build a table from ``rows``; returns it (rejected rows removed) and (row index, reason).

    ``schema`` fields get exactly their type; other keys are inferred when ``keep_extra`` (or
    when there is no schema) and dropped otherwise. ``previous`` is the row type inferred for
    the last batch (:func:`row_type` of its table): without a schema it is reused when these
    rows have exactly its keys, at every level, and every value converts to it.
    """
    with gc_paused():
        if schema is None:
            table = None
            if previous is not None and _same_keys(rows, previous):
                table = _struct_table(rows, previous)
            if table is None:
                table = _inferred_table(rows)
            if table is not None:
                return table, []
        if schema is not None and (not keep_extra or _keys_within(rows, schema.names)):
            table = _struct_table(rows, pa.struct(schema))
            if table is not None:
                return table.cast(schema) if table.schema != schema else table, []
        return _by_column(rows, schema, keep_extra, strict)


def row_type(table: pa.Table) -> pa.StructType:
    """The struct type of a table's rows, to pass as ``previous`` for the next batch."""
    return pa.struct(table.schema)


def _struct_table(rows: list[dict[str, Any]], kind: pa.StructType) -> pa.Table | None:
    """The dicts converted to ``kind`` in one C++ pass (missing keys are null, other keys
    ignored); None when a value does not convert."""
    try:
        array = pa.array(rows, type=kind)
    except _CONVERSION_ERRORS:
        return None
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(array)])


def _inferred_table(rows: list[dict[str, Any]]) -> pa.Table | None:
    """Every column inferred in one C++ pass (``pa.array`` over the dicts gives a struct whose
    fields are the union of the keys, in order of appearance): ~1.7x faster than column by
    column. None when a column's types clash; then :func:`_by_column` decides per column."""
    if not rows:
        return None
    try:
        array = pa.array(rows)
    except _CONVERSION_ERRORS:
        return None
    if not pa.types.is_struct(array.type) or array.type.num_fields == 0:
        return None
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(array)])


def _keys_within(rows: list[dict[str, Any]], names: list[str]) -> bool:
    """True when no row has a top-level key outside ``names`` (nothing extra to keep)."""
    try:
        return set().union(*rows) <= set(names)
    except TypeError:
        return False


def _same_keys(dicts: list[Any], kind: pa.StructType) -> bool:
    """True when the union of the dicts' keys is exactly ``kind``'s fields, and so on down
    through nested structs and lists of structs: then inferring would give the same columns.
    All C-level passes (~0.45 us a row for a typical event with one nested object)."""
    try:
        if set().union(*dicts) != {field.name for field in kind}:
            return False
        for field in kind:
            inner = _struct_in(field.type)
            if inner is None:
                continue
            nested = filter(None, map(dict.get, dicts, repeat(field.name)))
            if not pa.types.is_struct(field.type):  # a list of structs: its items
                nested = filter(None, chain.from_iterable(nested))
            if any(_struct_in(f.type) is not None for f in inner):  # deeper levels to check
                listed = list(nested)
                if listed and not _same_keys(listed, inner):
                    return False
            else:
                names = set().union(*nested)
                if names and names != {f.name for f in inner}:
                    return False
    except (TypeError, AttributeError):  # a row or nested value that is not a dict
        return False
    return True


def _struct_in(kind: pa.DataType) -> pa.StructType | None:
    """The struct type a column holds, directly or as list items; None for other columns."""
    if pa.types.is_struct(kind):
        return kind
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and \
            pa.types.is_struct(kind.value_type):
        return kind.value_type
    return None


def _by_column(
    rows: list[dict[str, Any]], schema: pa.Schema | None, keep_extra: bool, strict: bool
) -> tuple[pa.Table, list[tuple[int, str]]]:
    names: list[str] = list(schema.names) if schema is not None else []
    if schema is None or keep_extra:
        declared = set(names)
        names += [k for k in dict.fromkeys(chain.from_iterable(rows)) if k not in declared]
    bad: dict[int, str] = {}
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for name in names:
        values = [row.get(name) for row in rows]
        if schema is not None and name in schema.names:
            target = schema.field(name)
            array = _typed_column(name, values, target.type, bad)
            fields.append(target)
        else:
            array = _inferred_column(name, values, strict, bad)
            fields.append(pa.field(name, array.type))
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    if bad:
        keep = pa.array([i not in bad for i in range(len(rows))])
        table = table.filter(keep)
    return table, sorted(bad.items())


def _typed_column(name: str, values: list[Any], kind: pa.DataType, bad: dict[int, str]) -> pa.Array:
    try:
        return pa.array(values, kind)
    except _CONVERSION_ERRORS:
        pass
    if pa.types.is_timestamp(kind):  # ISO-8601 text and epoch numbers where a time is declared
        converted = []
        for i, value in enumerate(values):
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                when = instant(value)
                if when is None:
                    bad.setdefault(i, f"field '{name}': cannot read {value!r} as a timestamp")
                converted.append(when)
            else:
                converted.append(value)
        values = converted
        try:
            return pa.array(values, kind)
        except _CONVERSION_ERRORS:
            pass
    for i, value in enumerate(values):
        if value is None:
            continue
        try:
            pa.array([value], kind)
        except _CONVERSION_ERRORS as exc:
            try:  # text holding a number, a number for a float column...: Arrow's safe cast
                values[i] = pa.array([value]).cast(kind)[0].as_py()
            except _CONVERSION_ERRORS:
                bad.setdefault(i, f"field '{name}': {value!r:.80} is not {kind} ({exc})")
                values[i] = None
    return pa.array(values, kind)


def _inferred_column(name: str, values: list[Any], strict: bool, bad: dict[int, str]) -> pa.Array:
    try:
        return pa.array(values)
    except _CONVERSION_ERRORS:
        pass
    present = [v for v in values if v is not None]
    if present and all(type(v) is int for v in present):  # ints beyond int64: exact decimals
        try:
            return pa.array(values, EXACT_INTS)
        except _CONVERSION_ERRORS:
            pass
    if not strict:  # evolve: mixed types become text (nested values as JSON)
        return pa.array([json_text(v) for v in values], pa.string())
    kinds = Counter(type(v) for v in values if v is not None)
    winner = kinds.most_common(1)[0][0]
    kind = pa.array([next(v for v in values if type(v) is winner)]).type
    for i, value in enumerate(values):
        if value is None or type(value) is winner:
            continue
        try:
            pa.array([value], kind)
        except _CONVERSION_ERRORS:
            bad.setdefault(i, f"field '{name}': {type(value).__name__} value where the batch "
                              f"has {kind}")
            values[i] = None
    try:
        return pa.array(values, kind)
    except _CONVERSION_ERRORS:
        return _typed_column(name, values, kind, bad)
