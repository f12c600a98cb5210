"""ArrowFrame: a pyarrow Table plus the message index of each row (the core's Frame protocol)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from parquet_ingestor.interfaces import FrameGroup
from parquet_ingestor.records import hashable

_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


class ArrowFrame:
    """Rows as an Arrow table; ``sources[i]`` is the batch index of row ``i``'s message."""

    def __init__(self, table: pa.Table, sources: Sequence[int]) -> None:
        if len(sources) != table.num_rows:
            raise ValueError(f"{len(sources)} sources for {table.num_rows} rows")
        self.table = table
        self.sources = sources

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def __len__(self) -> int:
        return self.table.num_rows

    def __repr__(self) -> str:
        return f"ArrowFrame({self.table.num_rows} rows, {self.table.num_columns} columns)"

    def take(self, indices: Sequence[int]) -> ArrowFrame:
        idx = list(indices)
        sources = self.sources
        return ArrowFrame(self.table.take(pa.array(idx, pa.int64())), [sources[i] for i in idx])

    def slice(self, start: int, stop: int) -> ArrowFrame:
        start, stop, _ = slice(start, stop).indices(self.table.num_rows)
        stop = max(start, stop)
        return ArrowFrame(self.table.slice(start, stop - start), self.sources[start:stop])

    # -- grouping (the core's layout reads the times: parquet_ingestor.eventtime) ---------

    def group(
        self, fields: Sequence[str], time_field: str | None = None, seconds: int = 0,
        read: Callable[[Any], int | None] | None = None,
    ) -> list[FrameGroup]:
        """Rows by equal values of ``fields`` and time bucket, with Arrow's group-by: a
        timestamp (or date) column gives its ticks, any other column is dictionary-encoded and
        ``read`` (the core's rules) sees each distinct value once; buckets by integer division."""
        n = self.table.num_rows
        if n == 0:
            return []
        names = self.table.column_names
        columns: dict[str, pa.Array] = {}
        keys: list[str] = []
        per_second = 0
        if time_field:
            column = (self.table.column(time_field).combine_chunks()
                      if time_field in names else pa.nulls(n))
            ticks, per_second = _ticks(column, read)
            if not fields and not seconds:  # a span: no group-by needed
                return _one_bucket(ticks, per_second)
            columns["__t"] = _floor_div(ticks, seconds * per_second) if seconds \
                else pc.if_else(pc.is_valid(ticks), 0, pa.scalar(None, pa.int64()))
            columns["__ticks"] = ticks
            keys.append("__t")
        for i, name in enumerate(fields):
            keys.append(f"__f{i}")
            columns[f"__f{i}"] = (self.table.column(name).combine_chunks() if name in names
                                  else pa.nulls(n))
        if not keys:
            return [FrameGroup((), range(n))]
        columns["__row"] = pa.array(range(n), pa.int64())
        table = pa.table(columns)
        aggregates = [("__row", "list")]
        if time_field:
            aggregates += [("__ticks", "min"), ("__ticks", "max")]
        try:
            grouped = table.group_by(keys, use_threads=False).aggregate(aggregates)
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return _group_slow(table, keys, per_second, seconds, bool(time_field))
        field_values = [grouped.column(k).to_pylist() for k in keys[bool(time_field):]]
        rows = grouped.column("__row_list").to_pylist()
        times = grouped.column("__t").to_pylist() if time_field else None
        lows = grouped.column("__ticks_min").to_pylist() if time_field else None
        highs = grouped.column("__ticks_max").to_pylist() if time_field else None
        out = []
        for g in range(grouped.num_rows):
            values = tuple(v[g] for v in field_values)
            time = times[g] if times is not None else None
            epoch = None
            if time is not None and lows is not None and highs is not None:
                epoch = (time * seconds, _micros(lows[g], per_second),
                         _micros(highs[g], per_second))
            out.append(FrameGroup(values, sorted(rows[g]), epoch))
        return out


def _ticks(column: pa.Array, read: Callable[[Any], int | None] | None) -> tuple[pa.Array, int]:
    """The time column as int64 epoch ticks and ticks per second: a timestamp's own (a naive
    one's reading as UTC), a date's seconds, else ``read`` of each distinct value (µs)."""
    kind = column.type
    if pa.types.is_date(kind):
        column, kind = column.cast(pa.timestamp("s")), pa.timestamp("s")
    if pa.types.is_timestamp(kind):
        return column.cast(pa.int64()), _PER_SECOND[kind.unit]
    if read is None or column.null_count == len(column):
        return pa.nulls(len(column), pa.int64()), _PER_SECOND["us"]
    try:
        encoded = column if pa.types.is_dictionary(kind) else pc.dictionary_encode(column)
        distinct, codes = encoded.dictionary.to_pylist(), encoded.indices
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):  # structs, lists: by value
        distinct = column.to_pylist()
        codes = pa.array(range(len(distinct)), pa.int64())
    micros = pa.array([read(v) if v is not None else None for v in distinct], pa.int64())
    return micros.take(codes), _PER_SECOND["us"]


def _floor_div(ticks: pa.Array, width: int) -> pa.Array:
    """``ticks // width`` (Arrow's integer division truncates toward zero)."""
    quotient = pc.divide(ticks, width)
    below = pc.less(pc.subtract(ticks, pc.multiply(quotient, width)), 0)
    return pc.if_else(below, pc.subtract(quotient, 1), quotient)


def _micros(ticks: int, per_second: int) -> int:
    return ticks * 1_000_000 // per_second


def _one_bucket(ticks: pa.Array, per_second: int) -> list[FrameGroup]:
    """Every instant in one group (bucket 0, with its min and max), the rest in another."""
    n, nulls = len(ticks), ticks.null_count
    if nulls == n:
        return [FrameGroup((), range(n))]
    bounds = pc.min_max(ticks)
    epoch = (0, _micros(bounds["min"].as_py(), per_second),
             _micros(bounds["max"].as_py(), per_second))
    if not nulls:
        return [FrameGroup((), range(n), epoch)]
    valid = pc.is_valid(ticks)
    return [FrameGroup((), pc.indices_nonzero(valid).to_pylist(), epoch),
            FrameGroup((), pc.indices_nonzero(pc.invert(valid)).to_pylist())]


def _group_slow(
    table: pa.Table, keys: list[str], per_second: int, seconds: int, timed: bool
) -> list[FrameGroup]:
    """Python grouping for key types Arrow cannot group by (structs, lists)."""
    columns = [table.column(k).to_pylist() for k in keys]
    ticks = table.column("__ticks").to_pylist() if timed else None
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in range(table.num_rows):
        groups.setdefault(tuple(hashable(c[i]) for c in columns), []).append(i)
    out = []
    for key, rows in groups.items():
        values = key[1:] if timed else key
        epoch = None
        if ticks is not None and key[0] is not None:
            own = [ticks[i] for i in rows]
            epoch = (key[0] * seconds, _micros(min(own), per_second),
                     _micros(max(own), per_second))
        out.append(FrameGroup(values, rows, epoch))
    return out
