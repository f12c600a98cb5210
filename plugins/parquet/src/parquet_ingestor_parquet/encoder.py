"""ParquetEncoder: records (JSON lines, dicts or Arrow) -> ArrowFrame -> Parquet file in a stream."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.interfaces import Decoded
from parquet_ingestor.records import JsonLines, RecordList

from . import POOL_CHOSEN_BY_USER
from .combine import concat
from .frame import ArrowFrame
from .jsonread import EMPTY, parse_lines
from .pylist import row_type, table_from_rows
from .schema import load_schema, relaxed, schema_from_spec, without_nulls
from .writer import DICTIONARY_MODES, ArrowFrameWriter, FastparquetFrameWriter, WriteSettings

ENGINES = ("pyarrow", "fastparquet")
COMPRESSIONS = ("snappy", "zstd", "gzip", "lz4", "none")
POLICIES = ("evolve", "strict")


def _option_error(name: str, message: str) -> ConfigError:
    return ConfigError(f"encoder 'parquet' option '{name}': {message}")


class ParquetEncoder:
    """Apache Parquet files, written by pyarrow (streaming) or fastparquet (buffered).

    Schema: the ``schema`` option when given, else a ``JsonLines`` schema from the transformer,
    else inferred per batch. ``on_schema_change=strict`` fixes the schema (the given one, or the
    first batch's) and rejects records that do not fit it; ``evolve`` lets it follow the data.
    """

    extension = "parquet"
    content_type = "application/vnd.apache.parquet"

    def __init__(
        self,
        engine: str | None = "pyarrow",
        compression: str | None = "snappy",
        compression_level: int | None = None,
        row_group_size: int | None = 131_072,
        schema: str | pa.Schema | None = None,
        on_schema_change: str | None = "evolve",
        dictionary: str | None = "auto",
    ) -> None:
        engine = engine or "pyarrow"
        compression = (compression or "snappy").lower()
        on_schema_change = on_schema_change or "evolve"
        dictionary = dictionary or "auto"
        if dictionary not in DICTIONARY_MODES:
            raise _option_error("dictionary",
                                f"{dictionary!r} is not one of {', '.join(DICTIONARY_MODES)}")
        if engine not in ENGINES:
            raise _option_error("engine", f"{engine!r} is not one of {', '.join(ENGINES)}")
        if compression not in COMPRESSIONS:
            raise _option_error("compression",
                                f"{compression!r} is not one of {', '.join(COMPRESSIONS)}")
        if on_schema_change not in POLICIES:
            raise _option_error("on_schema_change",
                                f"{on_schema_change!r} is not one of {', '.join(POLICIES)}")
        row_group_size = 131_072 if row_group_size is None else int(row_group_size)
        if row_group_size < 1:
            raise _option_error("row_group_size", f"must be at least 1, got {row_group_size}")
        if engine == "fastparquet":
            try:
                import fastparquet  # noqa: F401
                import pandas  # noqa: F401
            except ImportError as exc:
                raise _option_error("engine", f"fastparquet needs the 'fastparquet' extra "
                                              f"(pip install parquet-ingestor-parquet"
                                              f"[fastparquet]): {exc}") from None
        self.engine = engine
        self.strict = on_schema_change == "strict"
        self.settings = WriteSettings(compression, compression_level, row_group_size,
                                      dictionary)
        self._check_codec()
        self.declared: pa.Schema | None = (
            load_schema(schema) if isinstance(schema, str) else schema)
        self._locked: pa.Schema | None = None  # strict without a schema: the first batch's
        self._row_type: pa.StructType | None = None  # inferred for the last batch of dicts
        self._lock = threading.Lock()
        _prefer_system_allocator()

    def _check_codec(self) -> None:
        codec, level = self.settings.compression, self.settings.compression_level
        if codec == "none":
            if level is not None:
                raise _option_error("compression_level", "compression 'none' takes no level")
            return
        if not pa.Codec.is_available(codec):
            raise _option_error("compression", f"{codec!r} is not available in this pyarrow")
        if level is None:
            return
        if not pa.Codec.supports_compression_level(codec):
            raise _option_error("compression_level", f"{codec} takes no level")
        low = pa.Codec.minimum_compression_level(codec)
        high = pa.Codec.maximum_compression_level(codec)
        if not low <= level <= high:
            raise _option_error("compression_level",
                                f"{level} is outside {low}..{high} for {codec}")

    # -- decoding ------------------------------------------------------------------------

    def schema_for(self, records: Any) -> pa.Schema | None:
        """The schema in force: the option's, else the records', else strict's locked one."""
        if self.declared is not None:
            return self.declared
        spec = getattr(records, "schema", None)
        if spec is not None and not isinstance(spec, pa.Schema):
            return schema_from_spec(spec, "records schema")
        if spec is not None:
            return spec
        return self._locked if self.strict else None

    def decode(self, records: Any) -> Decoded:
        """Records -> (ArrowFrame, rejected (message index, reason))."""
        schema = self.schema_for(records)
        if isinstance(records, JsonLines):
            table, items, rejected = self._decode_json(records, schema)
            sources: Sequence[int] = records.sources
        elif isinstance(records, RecordList):
            table, rejected = table_from_rows(
                records.rows, relaxed(schema) if schema is not None else None,
                keep_extra=not self.strict, strict=self.strict, previous=self._row_type)
            if schema is None and not rejected and table.num_columns:
                self._row_type = row_type(table)  # one reference swap: safe across workers
            items = _kept(len(records.rows), rejected)
            sources = records.sources
        else:
            table, sources = _arrow_of(records)
            items, rejected = list(range(table.num_rows)), []
            if schema is not None:
                table, bad = self._conform_arrow(table, schema)
                if bad:
                    rejected = bad
                    items = _kept(len(sources), bad)
        table, items, more = self._finish(table, items, schema)
        rejected = rejected + more
        if self.strict and schema is None and table.num_rows:
            with self._lock:
                if self._locked is None:
                    self._locked = without_nulls(table.schema)
        kept = (list(sources) if len(items) == len(sources) and not rejected
                else [sources[i] for i in items])  # the usual batch: every row, in order
        frame = ArrowFrame(table, kept)
        return Decoded(frame, [(sources[i], reason) for i, reason in sorted(rejected)])

    def _decode_json(
        self, records: JsonLines, schema: pa.Schema | None
    ) -> tuple[pa.Table, list[int], list[tuple[int, str]]]:
        read_schema = relaxed(schema) if schema is not None else None
        parsed = parse_lines(records.lines, read_schema, "ignore" if self.strict else "infer")
        items = parsed.lines
        rejected = parsed.rejected
        if not parsed.tables:
            table = (read_schema or pa.schema([])).empty_table()
        else:
            table, bad = concat(parsed.tables, self.strict)
            if bad:
                rejected = rejected + [(items[pos], reason) for pos, reason in bad]
                drop = {pos for pos, _ in bad}
                table = table.filter(pa.array([i not in drop for i in range(table.num_rows)]))
                items = [line for pos, line in enumerate(items) if pos not in drop]
        if records.columns:
            for name, values in records.columns.items():
                if len(items) == len(records.lines):
                    column = pa.array(values)
                else:
                    column = pa.array([values[i] for i in items])
                if name in table.column_names:
                    table = table.set_column(table.schema.get_field_index(name), name, column)
                else:
                    table = table.append_column(name, column)
        if EMPTY in table.column_names:
            if table.num_columns > 1:
                table = table.drop_columns([EMPTY])
            else:  # nothing to write: Parquet needs at least one column
                rejected = rejected + [(i, "JSON object has no fields") for i in items]
                table, items = pa.schema([]).empty_table(), []
        return table, items, rejected

    def _conform_arrow(
        self, table: pa.Table, schema: pa.Schema
    ) -> tuple[pa.Table, list[tuple[int, str]]]:
        """Arrow input under a schema: cast column-wise; on failure go row by row via Python."""
        target = relaxed(schema)
        try:
            columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
                       else pa.nulls(table.num_rows, f.type) for f in target]
            extra = [n for n in table.column_names if n not in target.names]
            result = pa.Table.from_arrays(columns, schema=target)
            if not self.strict:
                for name in extra:
                    result = result.append_column(name, table.column(name))
            return result, []
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return table_from_rows(table.to_pylist(), target, keep_extra=not self.strict,
                                   strict=self.strict)

    def _finish(
        self, table: pa.Table, items: list[int], schema: pa.Schema | None
    ) -> tuple[pa.Table, list[int], list[tuple[int, str]]]:
        """Required fields (strict rejects rows missing them) and the declared column order."""
        rejected: list[tuple[int, str]] = []
        if schema is None:
            return table, items, rejected
        if self.strict:
            missing = None
            reasons: dict[int, str] = {}
            for field in schema:
                if field.nullable or field.name not in table.column_names:
                    continue
                nulls = pc.is_null(table.column(field.name))
                if table.column(field.name).null_count:
                    for pos in pc.indices_nonzero(nulls).to_pylist():
                        reasons.setdefault(pos, f"required field '{field.name}' is missing")
                    missing = nulls if missing is None else pc.or_(missing, nulls)
            if missing is not None:
                rejected = [(items[pos], reason) for pos, reason in reasons.items()]
                table = table.filter(pc.invert(missing))
                items = [line for pos, line in enumerate(items) if pos not in reasons]
            present = [f for f in schema if f.name in table.column_names]
            target = pa.schema(present)
            extra = [n for n in table.column_names if n not in target.names]
            table = table.select(target.names + extra)
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
                table = table.cast(pa.schema(list(target) + [table.schema.field(n) for n in extra]))
        return table, items, rejected

    # -- writing -------------------------------------------------------------------------

    def open(self, stream: BinaryIO, frame: Any) -> ArrowFrameWriter | FastparquetFrameWriter:
        """Start a Parquet file in ``stream`` with ``frame``'s schema."""
        schema = frame.table.schema if isinstance(frame, ArrowFrame) else _arrow_of(frame)[0].schema
        if self.engine == "fastparquet":
            return FastparquetFrameWriter(stream, schema, self.settings)
        first = frame.table if isinstance(frame, ArrowFrame) else None
        return ArrowFrameWriter(stream, schema, self.settings, first=first)


def _prefer_system_allocator() -> None:
    """Arrow buffers from the C library's allocator, unless ARROW_DEFAULT_MEMORY_POOL chooses.

    pyarrow's default (mimalloc) kept ~100 MiB more resident across the flush threads for the
    same throughput (docs/performance.md); glibc gives freed batches back. Process-wide. The
    package's ``__init__`` sets the variable, which covers Arrow's C++ internals when pyarrow
    was not imported before; this covers pyarrow's own default when it was.
    """
    if not POOL_CHOSEN_BY_USER:
        pa.set_memory_pool(pa.system_memory_pool())


def _kept(n: int, rejected: list[tuple[int, str]]) -> list[int]:
    if not rejected:
        return list(range(n))
    drop = {i for i, _ in rejected}
    return [i for i in range(n) if i not in drop]


def _arrow_of(records: Any) -> tuple[pa.Table, Sequence[int]]:
    """A pyarrow Table/RecordBatch (bare, or wrapped in an object with ``sources``)."""
    if isinstance(records, ArrowFrame):
        return records.table, records.sources
    data = records
    for attr in ("table", "batch", "data"):
        if hasattr(records, attr) and isinstance(getattr(records, attr), pa.Table | pa.RecordBatch):
            data = getattr(records, attr)
            break
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        raise TypeError(f"the parquet encoder cannot decode {type(records).__name__}: give "
                        f"JsonLines, RecordList, or an Arrow table with sources")
    sources = getattr(records, "sources", None)
    if sources is None:
        sources = list(range(data.num_rows))
    return data, sources
