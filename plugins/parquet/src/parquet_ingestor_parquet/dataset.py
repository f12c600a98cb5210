"""One schema per dataset: the column types every file of an output is written with.

A column's type, once chosen, holds for every later batch, worker and (read back from the
newest files, see :mod:`.readback`) restarted process. Each batch is *conformed* to it:

* a value of another type converts when Arrow's safe cast keeps it exactly (int -> double
  within 2**53, int -> decimal, instant text -> timestamp, number -> string...); otherwise
  its row is rejected with the field, the value's type and the column's type;
* a new field is added as a nullable column (unless the schema is locked: ``strict`` or a
  sink's required schema, where it is dropped); an all-null new field waits for a typed value;
* a struct may gain nullable fields, at any depth (the only widening: Spark mergeSchema,
  DuckDB union_by_name, Polars and pyarrow.dataset all read it); no type is ever widened;
* every file carries every column known when it was opened (nulls where a batch has none);
  files open at once commit in any order, so the dataset's schema is the newest files' merged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import struct
import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import timeparse
from .rawjson import JsonNumber, RawLines
from .rawjson import positions_raw as positions_raw

BIG_INT = 2**53  # doubles hold every integer up to here exactly
EXACT_INTS = pa.decimal128(38, 0)  # integers beyond int64 (up to 38 digits) are stored as this

RawLine = RawLines  # row position -> the JSON line it came from (and the keys it was read from)


@dataclass(frozen=True)
class TypeRules:
    """How values become columns (the encoder's options, parsed)."""

    timestamp_unit: str = "us"
    time_fields: frozenset[str] = frozenset()
    lowercase: bool = False


class DatasetSchema:
    """The dataset's Arrow schema, shared by every flush worker (thread-safe).

    ``locked``: new fields are dropped instead of added (``strict``, or a table sink's schema).
    """

    def __init__(self, schema: pa.Schema | None, rules: TypeRules, locked: bool = False) -> None:
        self.schema = schema if schema is not None else pa.schema([])
        self.rules = rules
        self.locked = locked
        #: fields the JSON reader typed as timestamps in some batch (it drops offsets, turns
        #: dates into times): declared as text from then on
        self.time_like: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def set(self, schema: pa.Schema, locked: bool | None = None) -> None:
        with self._lock:
            self.schema = schema
            if locked is not None:
                self.locked = locked

    def merge(self, schema: pa.Schema) -> None:
        """Take the types of ``schema`` (read back from the dataset) for columns not yet known."""
        with self._lock:
            known = set(self.schema.names)
            extra = [f for f in schema if f.name not in known]
            if extra:
                self.schema = pa.schema(list(self.schema) + extra, metadata=self.schema.metadata)

    def read_types(self) -> pa.Schema:
        """Fields the JSON reader must be told, so that it neither infers times itself nor
        reformats text: timestamp columns (read as text, converted here), and the text fields
        it has typed as times before (:attr:`time_like`). Declaring every text field would
        cost ~5% of the parse for nothing."""
        fields = []
        time_like = self.time_like
        for field in self.schema:
            kind = field.type
            if pa.types.is_timestamp(kind):
                fields.append(pa.field(field.name, pa.string()))
            elif timeparse.has_timestamp(kind) or field.name in time_like:
                fields.append(pa.field(field.name, timeparse.as_strings(kind)))
        return pa.schema(fields)

    # -- conform -------------------------------------------------------------------------

    def fit(self, table: pa.Table, schema: pa.Schema | None = None) -> pa.Table:
        """A conformed table (maybe from before the schema last grew) in ``schema``: one
        read of :attr:`schema` taken after the table was conformed (default: the current one).
        Pieces of one batch take the same read: another worker may extend the schema between
        two calls, and pieces fitted to two versions of it cannot be put together."""
        return fitted(table, self.schema if schema is None else schema)

    def conform(
        self, table: pa.Table, raw: RawLine | None = None
    ) -> tuple[pa.Table, dict[int, str]]:
        """``table`` cast to the dataset schema (extended by its new fields); rows that cannot
        be stored exactly are removed and returned as {row position: reason}."""
        if self.rules.lowercase:
            table, clash, keys = _lowercased(table)
            if raw is not None and keys:
                raw = raw.renamed(keys)  # read again under the names as the JSON spells them
        else:
            clash = {}
        bad: dict[int, str] = dict(clash)
        schema = self.schema
        converted: dict[str, pa.Array | pa.ChunkedArray] = {}
        new_fields: list[pa.Field] = []
        untyped: list[pa.Field] = []  # kept for fit(); dropped there if still untyped
        for name, column in zip(table.column_names, table.columns, strict=True):
            if raw is not None and pa.types.is_nested(column.type):
                _nested_big_ints(name, column, raw, bad)
            if name in schema.names:
                target = schema.field(name)
                wider = widened(target.type, column.type)
                if wider is not None and not self.locked:
                    new_fields.append(target.with_type(wider))  # a struct gained fields
                    continue
                converted[name] = self._convert(name, column, target.type, bad, raw)
            elif not self.locked:
                kind, column = self._new_column(name, column, bad, raw)
                if kind is not None:
                    new_fields.append(pa.field(name, kind))
                    converted[name] = column
                elif column.null_count < len(column):  # [] or {}: typed by a later piece?
                    untyped.append(pa.field(name, column.type))
                    converted[name] = column
        if new_fields:
            schema = self._extend(new_fields)
            for field in new_fields:
                column = converted.get(field.name, table.column(field.name))
                converted[field.name] = self._convert(field.name, column, schema.field(
                    field.name).type, bad, raw)
        arrays = []
        n = table.num_rows
        for field in schema:
            column = converted.get(field.name)
            if column is None:
                column = pa.nulls(n, field.type)
            elif not field.nullable and column.null_count:
                for pos in pc.indices_nonzero(pc.is_null(column)).to_pylist():
                    bad.setdefault(pos, f"required field '{field.name}' is missing")
            arrays.append(column)
        untyped = [f for f in untyped if f.name not in schema.names]
        arrays += [converted[f.name] for f in untyped]
        full = pa.schema(list(schema) + untyped, metadata=schema.metadata)
        result = pa.Table.from_arrays(arrays, schema=_nullable(full)) if bad else \
            pa.Table.from_arrays(arrays, schema=full)
        if bad:
            keep = pc.invert(pa.array([i in bad for i in range(n)]))
            result = result.filter(keep).cast(full)
        return result, bad

    def _extend(self, fields: list[pa.Field]) -> pa.Schema:
        """Add or widen columns; a column another worker added first keeps that worker's type."""
        with self._lock:
            schema = self.schema
            for field in fields:
                if field.name not in schema.names:
                    schema = schema.append(field)
                    continue
                index = schema.get_field_index(field.name)
                wider = widened(schema.field(index).type, field.type)
                if wider is not None:
                    schema = schema.set(index, schema.field(index).with_type(wider))
            self.schema = schema
            return schema

    def _new_column(
        self, name: str, column: pa.ChunkedArray, bad: dict[int, str], raw: RawLine | None
    ) -> tuple[pa.DataType | None, pa.ChunkedArray | pa.Array]:
        """The type a field gets when first seen (None: all null, wait for a typed value)."""
        kind = _without_nulls(column.type)
        if kind is None:
            return None, column
        if timeparse.is_string(kind):
            stamps = timeparse.instants(column, self.rules.timestamp_unit)
            if stamps is not None:
                return stamps.type, stamps
        elif pa.types.is_timestamp(kind) or (name in self.rules.time_fields and (
                pa.types.is_integer(kind) or pa.types.is_floating(kind))):
            return timeparse.utc(self.rules.timestamp_unit), column
        if pa.types.is_floating(kind) and raw is not None:
            exact = _exact_numbers(name, column, raw, bad)
            if exact is not None:
                # integers read as doubles next to ones beyond int64: an integer column
                values = [v for v in exact if v is not None]
                if all(isinstance(v, int) or (isinstance(v, float) and v.is_integer())
                       for v in values):
                    fits = all(-(2**63) <= v < 2**63 for v in values)
                    kind = pa.int64() if fits else EXACT_INTS
                return kind, column
        if pa.types.is_unsigned_integer(kind):
            kind = EXACT_INTS if kind == pa.uint64() else pa.int64()
        elif pa.types.is_dictionary(kind):
            kind = kind.value_type
        elif pa.types.is_large_string(kind):
            kind = pa.string()
        return kind, column

    def _convert(
        self, name: str, column: pa.ChunkedArray | pa.Array, target: pa.DataType,
        bad: dict[int, str], raw: RawLine | None,
    ) -> pa.Array | pa.ChunkedArray:
        kind = column.type
        if kind == target:
            if pa.types.is_floating(kind) and raw is not None:
                exact = _exact_numbers(name, column, raw, bad)
                if exact is not None:
                    return _python_values(name, exact, target, bad, "number")
            return column
        if pa.types.is_null(kind):
            return pa.nulls(len(column), target)
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_timestamp(target):
            if timeparse.is_string(kind):
                stamps, failed = timeparse.strings_to_instants(array, target.unit)
                for pos in failed:
                    bad.setdefault(pos, _reason(name, "string", array[pos].as_py(), target,
                                                "not an ISO-8601 instant with a zone in the "
                                                "column's unit"))
                return stamps
            if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and \
                    name in self.rules.time_fields:
                stamps, failed = timeparse.epoch_to_instants(array, target.unit)
                for pos in failed:
                    bad.setdefault(pos, _reason(name, str(kind), array[pos].as_py(), target,
                                                "not an epoch time the unit holds exactly"))
                return stamps
            if pa.types.is_timestamp(kind):
                try:
                    return array.cast(target)
                except pa.ArrowInvalid:
                    pass
        if pa.types.is_floating(kind) and raw is not None:
            exact = _exact_numbers(name, array, raw, bad, text=timeparse.is_string(target))
            if exact is not None:  # as the JSON has them: 42 is an int, 2.50's text is "2.50"
                return _python_values(name, exact, target, bad, "number")
        try:
            if not _castable(kind, target):
                raise pa.ArrowInvalid("not converted as a whole")  # value by value
            return array.cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        return _python_values(name, array.to_pylist(), target, bad, _type_name(kind))


# ------------------------------------------------------------------------------------ helpers


def _python_values(
    name: str, values: list[object], target: pa.DataType, bad: dict[int, str], kind: str
) -> pa.Array:
    """Value by value: each converts exactly to ``target`` or its row is rejected."""
    out: list[object] = []
    for pos, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            converted = _exactly(value, target)
        except (TypeError, OverflowError) as exc:  # ours: say why
            bad.setdefault(pos, _reason(name, _value_type(value, kind), value, target, str(exc)))
            out.append(None)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
            bad.setdefault(pos, _reason(name, _value_type(value, kind), value, target,
                                        "does not convert exactly"))
            out.append(None)
            continue
        out.append(converted)
    return pa.array(out, target)


def _castable(kind: pa.DataType, target: pa.DataType) -> bool:
    """Whether Arrow's safe cast from ``kind`` to ``target`` keeps values as the JSON meant
    them: text is not read as numbers, booleans are not numbers, floats have no text (a
    float's text is its JSON spelling, read from the line), numbers are not times (outside
    time fields), times are not numbers or text."""
    if timeparse.is_string(kind):
        return timeparse.is_string(target)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return pa.types.is_timestamp(target)
    if pa.types.is_boolean(kind) or pa.types.is_boolean(target):
        return pa.types.is_boolean(kind) and pa.types.is_boolean(target)
    if pa.types.is_floating(kind) and (timeparse.is_string(target) or
                                       pa.types.is_decimal(target)):
        return False  # Arrow's "safe" double -> decimal cast rounds (1e-07 -> 0)
    return not (pa.types.is_timestamp(target) and not pa.types.is_timestamp(kind))


def _exactly(value: object, target: pa.DataType) -> object:
    """``value`` as ``target`` holds it, or an error when that would change it."""
    if isinstance(value, bool | dict | list) and timeparse.is_string(target):
        # what a new field's first batch stores when its types conflict (and what Spark and
        # DuckDB read into a string column): the same line gets the same text in any batch
        return json_text(value)
    if isinstance(value, bool) or pa.types.is_boolean(target):
        if isinstance(value, bool) and pa.types.is_boolean(target):
            return value
        raise TypeError("a boolean is not a number or text" if isinstance(value, bool)
                        else "only true and false are booleans")
    if pa.types.is_timestamp(target) and not isinstance(value, dt.datetime):
        raise TypeError("numbers are times only in a time field")
    if isinstance(value, dt.date) and not pa.types.is_timestamp(target):
        raise TypeError("a time is not converted to numbers or text")
    if isinstance(value, int) and pa.types.is_integer(target):
        bits = target.bit_width
        low, high = (0, 2**bits - 1) if pa.types.is_unsigned_integer(target) else (
            -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if not low <= value <= high:
            raise OverflowError(f"outside {target}'s range")
        return value
    if isinstance(value, int):
        if pa.types.is_floating(target):
            if abs(value) > BIG_INT:
                raise OverflowError("beyond 2**53, a double would round it")
            return float(value)
        if timeparse.is_string(target):
            return str(value)
        if pa.types.is_decimal(target):
            exact = decimal.Decimal(value)
            if len(exact.as_tuple().digits) > target.precision - target.scale:
                raise OverflowError(f"more than {target.precision - target.scale} digits")
            return exact
    if isinstance(value, float) and pa.types.is_decimal(target):
        exact = decimal.Decimal(value)  # the double's exact value, in its fewest digits
        if not exact.is_finite():
            raise ValueError("not a finite number")
        _, digits, exponent = exact.as_tuple()
        assert isinstance(exponent, int)  # finite
        if exponent < -target.scale:
            raise ValueError(f"more than {target.scale} decimal places")
        if len(digits) + exponent > target.precision - target.scale:
            raise OverflowError(f"more than {target.precision - target.scale} digits")
        return exact
    if isinstance(value, JsonNumber) and timeparse.is_string(target):
        return str(value)  # a number as the JSON line spells it
    if isinstance(value, float) and timeparse.is_string(target):
        raise TypeError("a float has text only as a JSON line spells it")
    if isinstance(value, str) and not timeparse.is_string(target) and not (
            pa.types.is_timestamp(target)):
        raise TypeError("text is not converted to numbers or other types")
    scalar = pa.scalar(value)
    return scalar.cast(target, safe=True).as_py()


def fitted(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``'s columns and order: nulls for the columns it lacks, its own cast
    where they differ (nullability; an untyped ``[]``/``{}`` column)."""
    if table.schema.equals(schema):
        return table
    n = table.num_rows
    arrays = [_cast(table.column(f.name), f.type) if f.name in table.column_names
              else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=_nullable(schema)).cast(schema)


def json_text(value: Any) -> str | None:
    """A value as the text a string column stores for it: compact JSON for objects, arrays,
    booleans and numbers (what evolve writes when a column's types conflict), text as it is."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dt.date):  # a Python datetime or date: ISO-8601, an instant if aware
        return value.isoformat()
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def _exact_numbers(
    name: str, column: pa.Array | pa.ChunkedArray, raw: RawLine, bad: dict[int, str],
    text: bool = False,
) -> list[object] | None:
    """A double column's values as the JSON lines have them, read again for the rows at risk:
    integers beyond 2**53 (Python ints, exact), or with ``text`` every number (its spelling,
    a :class:`~.rawjson.JsonNumber`). None when no row is at risk. A row whose value cannot
    be read again is rejected (never stored as null, nor rounded)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    risky = pc.is_valid(column) if text else _whole_from_2_53(column)
    if not pc.any(risky).as_py():
        return None
    positions = pc.indices_nonzero(pc.fill_null(risky, False)).to_pylist()
    if not positions:
        return None
    values: list[object] = column.to_pylist()
    found = raw.values(name, positions, text)
    for pos in positions:
        value = found.get(pos)
        if isinstance(value, JsonNumber if text else (int, float)) and not isinstance(
                value, bool):
            values[pos] = value
        else:  # the line does not hold this number: say so, do not guess
            bad.setdefault(pos, f"field '{name}': number {values[pos]!r} is not found again "
                                f"in its JSON line, so it cannot be kept exactly")
            values[pos] = None
    return values


def _nested_big_ints(
    name: str, column: pa.ChunkedArray, raw: RawLine, bad: dict[int, str]
) -> None:
    """Reject the rows whose JSON holds an integer beyond 2**53 where the column has a double
    inside a struct or list (a double would round it; top-level numbers are read again exactly
    instead). Arrow finds the rows at risk; only their lines are read again."""
    paths = _double_paths(column.type, ())
    if not paths:
        return
    risky = _risky_rows(column.combine_chunks())
    if not risky:
        return
    found = raw.values(name, risky)
    for pos in risky:
        value = found.get(pos)
        for path in paths:
            big = next((v for v in _at_path(value, path) if isinstance(v, int) and not
                        isinstance(v, bool) and abs(v) > BIG_INT), None)
            if big is not None:
                shown = name + "".join(f".{step}" if step else "[]" for step in path)
                bad.setdefault(pos, f"field '{name}': int value {big} at {shown} cannot be "
                                    f"stored in its double (beyond 2**53, a double would "
                                    f"round it)")
                break


def _double_paths(kind: pa.DataType, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Where ``kind`` holds doubles: struct field names, "" for a list's items."""
    if pa.types.is_floating(kind):
        return [path]
    if pa.types.is_struct(kind):
        return [p for i in range(kind.num_fields)
                for p in _double_paths(kind.field(i).type, (*path, kind.field(i).name))]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _double_paths(kind.value_type, (*path, ""))
    return []


def _risky_rows(array: pa.Array) -> list[int]:
    """Rows of ``array`` with a whole double of 2**53 or more anywhere inside (vectorized)."""
    kind = array.type
    if pa.types.is_floating(kind):
        risky = _whole_from_2_53(array)
        return pc.indices_nonzero(pc.fill_null(risky, False)).to_pylist() \
            if pc.any(risky).as_py() else []
    if pa.types.is_struct(kind):
        rows: set[int] = set()
        for i in range(kind.num_fields):
            rows.update(_risky_rows(array.field(i)))
        return sorted(rows)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = _risky_rows(pc.list_flatten(array))
        if not inner:
            return []
        parents = pc.list_parent_indices(array).to_pylist()
        return sorted({parents[i] for i in inner})
    return []


def _at_path(value: object, path: tuple[str, ...]) -> list[object]:
    """The values at ``path`` in a JSON value ("" steps into every item of a list)."""
    values = [value]
    for step in path:
        nxt: list[object] = []
        for v in values:
            if step == "" and isinstance(v, list):
                nxt.extend(v)
            elif step and isinstance(v, dict):
                nxt.append(v.get(step))
        values = nxt
    return values


def _whole_from_2_53(array: pa.Array) -> pa.Array:
    """Where a double array holds a whole number of 2**53 or more, which may have been an
    integer a double rounded (vectorized)."""
    return pc.and_(pc.greater_equal(pc.abs(array), _big_int_scalar()),
                   pc.equal(pc.floor(array), array))


@functools.cache
def _big_int_scalar() -> pa.Scalar:
    """2**53 as an Arrow double, built from its bytes: a Python number given to a compute
    function makes pyarrow import pandas (~1.5 CPU-seconds, 40 MiB), on the hot path."""
    buffer = pa.py_buffer(struct.pack("<d", float(BIG_INT)))
    return pa.Array.from_buffers(pa.float64(), 1, [None, buffer])[0]


def _reason(name: str, value_type: str, value: object, target: pa.DataType, why: str) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return (f"field '{name}': {value_type} value {shown} cannot be stored in the column's type "
            f"{target} ({why})")


def _value_type(value: object, fallback: str) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", dict: "object",
            list: "array"}.get(type(value), fallback)


def _type_name(kind: pa.DataType) -> str:
    if timeparse.is_string(kind):
        return "string"
    if pa.types.is_struct(kind):
        return "object"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return "array"
    return str(kind)


def _without_nulls(kind: pa.DataType) -> pa.DataType | None:
    """``kind`` without its null-typed parts (fields not yet seen with a value); None if nothing
    is left (an all-null column, an empty list)."""
    if pa.types.is_null(kind):
        return None
    if pa.types.is_struct(kind):
        fields = []
        for i in range(kind.num_fields):
            inner = _without_nulls(kind.field(i).type)
            if inner is not None:
                fields.append(kind.field(i).with_type(inner))
        return pa.struct(fields) if fields else None
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = _without_nulls(kind.value_type)
        if inner is None:
            return None
        return pa.list_(kind.value_field.with_type(inner))
    return kind


def widened(
    target: pa.DataType, incoming: pa.DataType, as_written: bool = False
) -> pa.DataType | None:
    """``target`` with the struct fields ``incoming`` adds (at any depth), or None if none.

    A new field that the JSON reader typed as a timestamp is added as text (see
    :meth:`DatasetSchema.read_types`); with ``as_written`` (types read back from files, see
    :mod:`.readback`) it keeps its type."""
    if pa.types.is_struct(target) and pa.types.is_struct(incoming):
        fields = [target.field(i) for i in range(target.num_fields)]
        names = {f.name: i for i, f in enumerate(fields)}
        changed = False
        for j in range(incoming.num_fields):
            field = incoming.field(j)
            if field.name in names:
                inner = widened(fields[names[field.name]].type, field.type, as_written)
                if inner is not None:
                    fields[names[field.name]] = fields[names[field.name]].with_type(inner)
                    changed = True
            else:
                kind = _without_nulls(field.type)
                if kind is not None:
                    if pa.types.is_timestamp(kind) and not as_written:
                        kind = pa.string()
                    fields.append(pa.field(field.name, kind))
                    changed = True
        return pa.struct(fields) if changed else None
    if (pa.types.is_list(target) or pa.types.is_large_list(target)) and (
            pa.types.is_list(incoming) or pa.types.is_large_list(incoming)):
        inner = widened(target.value_type, incoming.value_type, as_written)
        if inner is None:
            return None
        item = target.value_field.with_type(inner)
        return pa.list_(item) if pa.types.is_list(target) else pa.large_list(item)
    return None


def _cast(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    if column.type == kind:
        return column
    try:
        return column.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        if _without_nulls(column.type) is None:  # only [] / {} / nulls: nothing typed lost
            return pa.chunked_array([pa.nulls(len(column), kind)])
        raise


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema], metadata=schema.metadata)


def _lowercased(
    table: pa.Table,
) -> tuple[pa.Table, dict[int, str], dict[str, list[str]]]:
    """Column names in lower case (S3 Tables, Glue), and {new name: the names it was read from}
    for those that changed. Two names that collide are one column: each row keeps the value it
    has; rows where both hold a value are rejected (neither could be kept)."""
    names = table.column_names
    lower = [n.lower() for n in names]
    if lower == names:
        return table, {}, {}
    bad: dict[int, str] = {}
    seen: dict[str, int] = {}
    keep: list[int] = []
    columns: dict[int, pa.ChunkedArray] = {}
    spelled: dict[str, list[str]] = {}
    for i, name in enumerate(lower):
        spelled.setdefault(name, []).append(names[i])
        if name not in seen:
            seen[name] = i
            keep.append(i)
            continue
        first = seen[name]
        kept, other = columns.get(first, table.column(first)), table.column(i)
        both = pc.and_(pc.is_valid(kept), pc.is_valid(other))
        for pos in pc.indices_nonzero(both).to_pylist():
            bad.setdefault(pos, f"fields '{names[first]}' and '{names[i]}' are one "
                                f"column when names are lower case")
        if other.null_count == len(other):
            continue
        if kept.null_count == len(kept) or kept.type == other.type:
            columns[first] = pc.coalesce(kept, other) if kept.type == other.type else other
            continue
        for pos in pc.indices_nonzero(pc.and_(pc.is_null(kept), pc.is_valid(other))).to_pylist():
            bad.setdefault(pos, f"fields '{names[first]}' and '{names[i]}' are one column when "
                                f"names are lower case, and their values differ in type "
                                f"({kept.type}, {other.type}) in this batch")
    table = table.select(keep).rename_columns([lower[i] for i in keep])
    for first, column in columns.items():
        index = keep.index(first)
        table = table.set_column(index, pa.field(lower[first], column.type), column)
    return table, bad, {name: keys for name, keys in spelled.items() if keys != [name]}
