"""ArrowFrame: a pyarrow Table plus the message index of each row (the core's Frame protocol)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .timeparse import event_times as _as_timestamps

TIME_UNITS = ("year", "month", "day", "hour", "minute", "second")
_UTC_US = pa.timestamp("us", tz="UTC")

GroupKey = tuple[datetime | None, tuple[Any, ...]]


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

    # -- time ----------------------------------------------------------------------------

    def event_times(self, time_field: str) -> pa.Array:
        """``time_field`` as ``timestamp[us, UTC]``; null where missing or unusable."""
        n = self.table.num_rows
        if time_field not in self.table.column_names:
            return pa.nulls(n, _UTC_US)
        return _as_timestamps(self.table.column(time_field).combine_chunks())

    def group_rows(
        self, time_field: str | None, time_unit: str, fields: Sequence[str]
    ) -> dict[GroupKey, list[int]]:
        """Row indices per (event time floored to ``time_unit``, field values), vectorized."""
        if time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
        n = self.table.num_rows
        if n == 0:
            return {}
        columns: dict[str, pa.Array] = {}
        if time_field:
            columns["__time"] = pc.floor_temporal(self.event_times(time_field), unit=time_unit)
        names = []
        for i, name in enumerate(fields):
            key = f"__f{i}"
            names.append(key)
            if name in self.table.column_names:
                columns[key] = self.table.column(name).combine_chunks()
            else:
                columns[key] = pa.nulls(n)
        columns["__row"] = pa.array(range(n), pa.int64())
        keys = (["__time"] if time_field else []) + names
        if not keys:
            return {(None, ()): list(range(n))}
        table = pa.table(columns)
        try:
            grouped = table.group_by(keys, use_threads=False).aggregate([("__row", "list")])
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return self._group_rows_slow(table, time_field, names)
        times = grouped.column("__time").to_pylist() if time_field else [None] * grouped.num_rows
        values = [grouped.column(k).to_pylist() for k in names]
        rows = grouped.column("__row_list").to_pylist()
        result: dict[GroupKey, list[int]] = {}
        for g in range(grouped.num_rows):
            when = times[g]
            key = (when.astimezone(UTC) if when is not None else None,
                   tuple(v[g] for v in values))
            result.setdefault(key, []).extend(rows[g])
        for indices in result.values():
            indices.sort()
        return result

    def _group_rows_slow(
        self, table: pa.Table, time_field: str | None, names: list[str]
    ) -> dict[GroupKey, list[int]]:
        """Python grouping for key types Arrow cannot group by (structs, lists)."""
        times = table.column("__time").to_pylist() if time_field else None
        values = [table.column(k).to_pylist() for k in names]
        result: dict[GroupKey, list[int]] = {}
        for i in range(table.num_rows):
            when = times[i] if times is not None else None
            parts = tuple(_hashable(v[i]) for v in values)
            result.setdefault((when.astimezone(UTC) if when else None, parts), []).append(i)
        return result

    def time_range(self, time_field: str) -> tuple[datetime, datetime] | None:
        """Min and max event time of ``time_field``, or None when no row has one."""
        if self.table.num_rows == 0:
            return None
        bounds = pc.min_max(self.event_times(time_field))
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is None or high is None:
            return None
        return low.astimezone(UTC), high.astimezone(UTC)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
