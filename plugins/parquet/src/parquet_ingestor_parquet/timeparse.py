"""Timestamps as stored: which values become a ``timestamp[unit, tz=UTC]`` column, in one place.

* A string is an **instant** when Arrow's ISO-8601 parser reads it *with a zone*: ``Z`` or an
  offset (``+02:00``, ``+0200``), with or without fractional seconds, ``T`` or a space between
  date and time. It is stored UTC-adjusted (Parquet ``isAdjustedToUTC = true``).
* A new string column becomes a timestamp column only when every value in its first batch is an
  instant. Everything else stays a string exactly as it came: dates alone (``2024-05-01``),
  times alone, local date-times without a zone, and text.
* A value with more fractional digits than the unit holds is not rounded: it does not convert.
* Epoch numbers (seconds, or milliseconds above 1e11 as in ``parquet_ingestor.eventtime``) convert only
  in a *time field*: the ``--partition-by event:FIELD`` field or one named in ``time_fields``.

Which partition a row goes to is the core's business (``parquet_ingestor.eventtime``): the
frame hands it a timestamp column as integer epoch ticks.

``pyarrow.json`` infers timestamps on its own (and drops offsets, and turns dates into times):
wherever it does, :mod:`.jsonread` reads those fields again as strings (:func:`as_strings`), so
every value reaches this module (and the type rules) as the text it was in the JSON.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from parquet_ingestor.eventtime import EPOCH_MS_THRESHOLD  # the core's rule, stored alike

UNITS = ("ms", "us", "ns")
_PER_SECOND = {"ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def utc(unit: str) -> pa.TimestampType:
    """The column type of an instant: ``timestamp[unit, tz=UTC]``."""
    return pa.timestamp(unit, tz="UTC")


def is_string(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def instants(column: pa.Array | pa.ChunkedArray, unit: str) -> pa.Array | pa.ChunkedArray | None:
    """``column`` (strings) as UTC timestamps when every non-null value is an instant, else None."""
    if column.null_count == len(column):
        return None
    try:  # a failing cast costs ~1 us a value (its error): the first values decide most columns
        head = column.slice(0, 16)
        if head.null_count < len(head):
            head.cast(utc(unit))
        return column.cast(utc(unit))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def strings_to_instants(
    values: pa.Array, unit: str
) -> tuple[pa.Array, list[int]]:
    """Strings -> UTC timestamps; returns the array (null where a value is not an instant) and
    the positions of those values. One cast when all convert; else the failing range is halved
    until the values that do not convert are found (a few casts per bad value, no Python loop
    over the batch)."""
    bad: list[int] = []
    kind = utc(unit)
    pieces = _cast_or_split(values, kind, 0, bad)
    return (pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)), bad


def _cast_or_split(values: pa.Array, kind: pa.DataType, offset: int,
                   bad: list[int]) -> list[pa.Array]:
    try:
        return [values.cast(kind)]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(values) == 1:
        bad.append(offset)
        return [pa.nulls(1, kind)]
    mid = len(values) // 2
    return (_cast_or_split(values.slice(0, mid), kind, offset, bad)
            + _cast_or_split(values.slice(mid), kind, offset + mid, bad))


def epoch_to_instants(values: pa.Array, unit: str) -> tuple[pa.Array, list[int]]:
    """Epoch seconds or milliseconds (numbers) -> UTC timestamps, exactly where the unit holds
    the value (1.5 s is 1500 ms; 1.0000001 s at ms does not convert)."""
    numbers = values.cast(pa.float64())
    per_second = _PER_SECOND[unit]
    is_ms = pc.greater(pc.abs(numbers), EPOCH_MS_THRESHOLD)
    scaled = pc.if_else(is_ms, pc.multiply(numbers, per_second / 1000),
                        pc.multiply(numbers, float(per_second)))
    whole = pc.equal(pc.floor(scaled), scaled)
    bad = pc.indices_nonzero(pc.and_(pc.is_valid(numbers), pc.invert(whole))).to_pylist()
    if pa.types.is_integer(values.type) and not bad:  # exact integer arithmetic when possible
        ints = values.cast(pa.int64())
        try:
            ticks = pc.if_else(is_ms, pc.multiply_checked(ints, per_second // 1000),
                               pc.multiply_checked(ints, per_second))
            return ticks.cast(utc(unit)), []
        except pa.ArrowInvalid:
            pass
    safe = pc.if_else(whole, scaled, None)
    try:
        return safe.cast(pa.int64()).cast(utc(unit)), bad
    except pa.ArrowInvalid:  # out of range: value by value
        out: list[int | None] = []
        for i, value in enumerate(safe.to_pylist()):
            if value is not None and abs(value) < 2**63:
                out.append(int(value))
            else:
                if value is not None:
                    bad.append(i)
                out.append(None)
        return pa.array(out, pa.int64()).cast(utc(unit)), sorted(bad)


def has_timestamp(kind: pa.DataType) -> bool:
    """True when ``kind`` is, or holds at any depth, a timestamp."""
    if pa.types.is_timestamp(kind):
        return True
    if pa.types.is_struct(kind):
        return any(has_timestamp(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return has_timestamp(kind.value_type)
    return False


def as_strings(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every timestamp (at any depth) replaced by string: how the JSON reader is
    told to keep the text, so that this module, not the reader, decides what is an instant."""
    if pa.types.is_timestamp(kind):
        return pa.string()
    if pa.types.is_struct(kind):
        return pa.struct([kind.field(i).with_type(as_strings(kind.field(i).type))
                          for i in range(kind.num_fields)])
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(as_strings(kind.value_type)))
    if pa.types.is_large_list(kind):
        return pa.large_list(kind.value_field.with_type(as_strings(kind.value_type)))
    return kind
