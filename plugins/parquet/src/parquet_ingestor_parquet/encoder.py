"""ParquetEncoder: records (JSON lines, dicts or Arrow) -> ArrowFrame -> Parquet file in a stream."""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Sequence
from typing import Any, BinaryIO

from parquet_ingestor.errors import ConfigError
from parquet_ingestor.interfaces import Decoded
from parquet_ingestor.records import JsonLines, RecordList

from .arrowpool import pa
from .combine import unify_new_columns
from .compat import PROFILES
from .dataset import DatasetSchema, TypeRules, positions_raw
from .frame import ArrowFrame
from .jsonread import EMPTY, parse_lines
from .limits import DEEPEST_READABLE, DEFAULT_MAX_DEPTH, DEFAULT_MAX_KEYS
from .pylist import row_type, table_from_rows
from .schema import load_schema, relaxed, schema_from_spec
from .timeparse import UNITS
from .writer import (
    DICTIONARY_MODES,
    ROW_GROUP_BYTES,
    WRITERS_BUDGET,
    ArrowFrameWriter,
    FastparquetFrameWriter,
    WriterBudget,
    WriteSettings,
)

log = logging.getLogger(__name__)

ENGINES = ("pyarrow", "fastparquet")
COMPRESSIONS = ("snappy", "zstd", "gzip", "lz4", "none")
POLICIES = ("evolve", "strict")


def _option_error(name: str, message: str) -> ConfigError:
    return ConfigError(f"encoder 'parquet' option '{name}': {message}")


class ParquetEncoder:
    """Apache Parquet files, written by pyarrow (streaming) or fastparquet (buffered).

    One schema per dataset (:mod:`.dataset`): the ``schema`` option, a sink's required schema
    (:meth:`require`), or the newest file's footer read back at start, extended by new fields
    as they come (``on_schema_change=evolve``) or not at all (``strict``). Every frame is cast
    to it; rows whose values cannot be stored exactly are rejected with a reason.
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
        compat: str | None = "all",
        timestamp_unit: str | None = None,
        time_fields: Sequence[str] | str | None = None,
        max_depth: int | None = DEFAULT_MAX_DEPTH,
        max_keys: int | None = DEFAULT_MAX_KEYS,
        row_group_bytes: int | None = None,
    ) -> None:
        engine = engine or "pyarrow"
        compression = (compression or "snappy").lower()
        on_schema_change = on_schema_change or "evolve"
        dictionary = dictionary or "auto"
        compat = compat or "all"
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
        if compat not in PROFILES:
            raise _option_error("compat", f"{compat!r} is not one of {', '.join(PROFILES)}")
        profile = PROFILES[compat]
        unit = timestamp_unit or profile.timestamp_unit
        if unit not in UNITS:
            raise _option_error("timestamp_unit", f"{unit!r} is not one of {', '.join(UNITS)}")
        row_group_size = 131_072 if row_group_size is None else int(row_group_size)
        if row_group_size < 1:
            raise _option_error("row_group_size", f"must be at least 1, got {row_group_size}")
        self.max_depth = DEFAULT_MAX_DEPTH if max_depth is None else int(max_depth)
        self.max_keys = DEFAULT_MAX_KEYS if max_keys is None else int(max_keys)
        if not 1 <= self.max_depth <= DEEPEST_READABLE:
            raise _option_error("max_depth", f"must be 1..{DEEPEST_READABLE} (deeper files "
                                             f"cannot be read), got {self.max_depth}")
        if self.max_keys < 1:
            raise _option_error("max_keys", f"must be at least 1, got {self.max_keys}")
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
        #: the row-group size in bytes when given (the core checks --target-file-size
        #: against it); by default ROW_GROUP_BYTES, at most a quarter of --target-file-size
        self.row_group_bytes = int(row_group_bytes) if row_group_bytes else None
        self.settings = WriteSettings(compression, compression_level, row_group_size,
                                      dictionary, self.row_group_bytes or ROW_GROUP_BYTES)
        self.budget = WriterBudget()
        self._check_codec()
        if isinstance(time_fields, str):
            time_fields = [f for f in time_fields.split(",") if f.strip()]
        rules = TypeRules(timestamp_unit=unit,
                          time_fields=frozenset(f.strip() for f in time_fields or ()),
                          lowercase=profile.lowercase)
        self.declared: pa.Schema | None = (
            load_schema(schema) if isinstance(schema, str) else schema)
        # evolve writes a record missing a declared field with a null; strict rejects it
        start = self.declared if self.strict or self.declared is None else relaxed(self.declared)
        self.dataset = DatasetSchema(start, rules, locked=self.strict and start is not None)
        if self.declared is not None:
            self._declare_times(self.declared)
        self._required = False  # a sink's schema is the authority: nothing read back
        self._merged_spec: Any = None  # the records' schema last merged (JsonLines.schema)
        self._row_type: pa.StructType | None = None  # inferred for the last batch of dicts
    def _fit_row_groups(self, settings: Any) -> None:
        """Row groups a quarter of --target-file-size at most (unless row_group_bytes says),
        and the writers' budget an eighth of the room --memory-limit leaves at most."""
        target = getattr(settings, "target_file_size", 0) or 0
        if target and self.row_group_bytes is None:
            self.settings = dataclasses.replace(
                self.settings, row_group_bytes=max(1, min(ROW_GROUP_BYTES, target // 4)))
        memory = getattr(settings, "memory_limit", None)
        if memory is None:
            from parquet_ingestor.memory import default_limit

            memory = default_limit()
        if memory:
            from parquet_ingestor.memory import rss

            self.budget.limit = max(1, min(WRITERS_BUDGET, (memory - rss()) // 8))

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

    # -- the dataset schema --------------------------------------------------------------

    @property
    def schema(self) -> pa.Schema:
        """The dataset schema every frame is cast to (grows with new fields under evolve)."""
        return self.dataset.schema

    def _declare_times(self, schema: pa.Schema) -> None:
        """Fields declared as timestamps are time fields: epoch numbers convert there too."""
        self._add_time_fields({f.name for f in schema if pa.types.is_timestamp(f.type)})

    def _add_time_fields(self, names: set[str]) -> None:
        rules = self.dataset.rules
        if not names <= rules.time_fields:
            self.dataset.rules = dataclasses.replace(rules, time_fields=rules.time_fields | names)

    def require(self, requirements: Any) -> None:
        """A sink's :class:`~parquet_ingestor.interfaces.SinkRequirements`: its Arrow schema
        (field metadata such as ``PARQUET:field_id`` included) becomes the authority; fields
        outside it are dropped, values that do not fit it are rejected."""
        schema = getattr(requirements, "schema", None)
        if schema is None:
            return
        if not isinstance(schema, pa.Schema):
            raise ConfigError(f"encoder 'parquet': the sink requires a schema given as "
                              f"{type(schema).__name__}; it takes an Arrow schema")
        self.dataset.set(schema, locked=True)
        self._declare_times(schema)
        self._required = True

    def start(self, context: Any) -> None:
        """The run's event-time field becomes a time field; the schema already written under
        the sink's root is read back, so a restarted process keeps the dataset's types."""
        time_field = getattr(context, "event_time_field", None)
        if time_field:
            self._add_time_fields({time_field})
        self._fit_row_groups(getattr(context, "settings", None))
        sink = getattr(context, "sink", None)
        requirements = getattr(sink, "requirements", None)
        if callable(requirements):  # a table sink: its schema is the authority
            self.require(requirements())
        if self._required or sink is None or not callable(getattr(sink, "url", None)):
            return
        from .readback import dataset_schema

        root = sink.url("")
        try:
            found = dataset_schema(root)
        except Exception as exc:  # noqa: BLE001 - unreadable root: infer, and say so
            log.warning("could not read the dataset schema back from %s (types are inferred "
                        "afresh): %s", root, exc)
            return
        if found is not None:
            self.dataset.merge(found)
            if self.strict:
                self.dataset.locked = True
            log.info("dataset schema read back from %s: %d columns", root, len(found))

    # -- decoding ------------------------------------------------------------------------

    def schema_for(self, records: Any) -> pa.Schema | None:
        """The schema in force: the dataset's, once it has columns; else a records' schema."""
        spec = getattr(records, "schema", None)
        if spec is not None and spec is not self._merged_spec and not self._required:
            # a transformer's declared types: taken for the columns not known yet (once per
            # declaration; the dataset's own types, e.g. read back, come first)
            given = spec if isinstance(spec, pa.Schema) else schema_from_spec(
                spec, "records schema")
            self.dataset.merge(given)
            self._declare_times(given)
            self._merged_spec = spec
            if self.strict:
                self.dataset.locked = True
        return self.dataset.schema if len(self.dataset.schema) else None

    def decode(self, records: Any) -> Decoded:
        """Records -> (ArrowFrame, rejected (message index, reason))."""
        self.schema_for(records)
        if isinstance(records, JsonLines):
            table, items, rejected = self._decode_json(records)
            sources: Sequence[int] = records.sources
        else:
            if isinstance(records, RecordList):
                # known scalar columns convert value by value; nested ones are inferred (a
                # struct may have gained keys at any depth) and conformed after
                # (times as text: the timestamp rules decide, as for JSON)
                known = pa.schema([f.with_type(pa.string()) if pa.types.is_timestamp(f.type)
                                   else f for f in relaxed(self.dataset.schema)
                                   if not pa.types.is_nested(f.type)])
                table, rejected = table_from_rows(
                    records.rows, known if len(known) else None, keep_extra=True,
                    strict=self.strict, previous=self._row_type)
                if not rejected and table.num_columns:
                    self._row_type = row_type(table)  # one reference swap: safe across workers
                items = _kept(len(records.rows), rejected)
                sources = records.sources
            else:
                table, sources = _arrow_of(records)
                items, rejected = list(range(table.num_rows)), []
            table, bad = self._conform(table)
            if bad:
                rejected = rejected + [(items[pos], reason) for pos, reason in bad.items()]
                items = [line for pos, line in enumerate(items) if pos not in bad]
        kept = (list(sources) if len(items) == len(sources) and not rejected
                else [sources[i] for i in items])  # the usual batch: every row, in order
        frame = ArrowFrame(table, kept)
        return Decoded(frame, [(sources[i], reason) for i, reason in sorted(rejected)])

    def _conform(self, table: pa.Table, raw: Any = None) -> tuple[pa.Table, dict[int, str]]:
        if not table.num_columns and not len(self.dataset.schema):
            return table, {}
        table, bad = self.dataset.conform(table, raw)
        if self.strict and not self.dataset.locked and len(self.dataset.schema):
            self.dataset.locked = True  # strict: the first batch's schema holds
        return table, bad

    def _decode_json(
        self, records: JsonLines
    ) -> tuple[pa.Table, list[int], list[tuple[int, str]]]:
        """Parse, then conform each parsed piece on its own (a piece split off around a bad
        line must not change its neighbours' types), then put the pieces together."""
        read_schema = self.dataset.read_types()
        parsed = parse_lines(records.lines, read_schema if len(read_schema) else None, "infer",
                             max_depth=self.max_depth, max_keys=self.max_keys,
                             one_line=records.one_line)
        if not parsed.as_text <= self.dataset.time_like:
            # the reader took text for times (read again as text): declared from now on
            self.dataset.time_like = self.dataset.time_like | parsed.as_text
        rejected = list(parsed.rejected)
        items: list[int] = []
        pieces: list[pa.Table] = []
        offset = 0
        lines = records.lines
        tables = parsed.tables
        if len(tables) > 1 and not self.strict:  # a new field whose pieces disagree: text
            bounds = itertools.pairwise(itertools.accumulate(
                (t.num_rows for t in tables), initial=0))
            tables = unify_new_columns(
                tables, set(self.dataset.schema.names),
                [positions_raw(lines, parsed.lines[a:b]) for a, b in bounds],
                self.dataset.rules.lowercase)
        for piece in tables:
            rows = parsed.lines[offset:offset + piece.num_rows]
            offset += piece.num_rows
            if records.columns:
                for name, values in records.columns.items():
                    column = pa.array([values[i] for i in rows])
                    if name in piece.column_names:
                        piece = piece.set_column(piece.schema.get_field_index(name), name, column)
                    else:
                        piece = piece.append_column(name, column)
            if EMPTY in piece.column_names:
                if piece.num_columns == 1:  # nothing to write: Parquet needs a column
                    rejected += [(i, "JSON object has no fields") for i in rows]
                    continue
                piece = piece.drop_columns([EMPTY])
            piece, bad = self._conform(piece, positions_raw(lines, rows))
            if bad:
                rejected += [(rows[pos], reason) for pos, reason in bad.items()]
                rows = [line for pos, line in enumerate(rows) if pos not in bad]
            pieces.append(piece)
            items += rows
        if not pieces:
            return self.dataset.fit(pa.schema([]).empty_table()), [], rejected
        if len(pieces) == 1:
            return self.dataset.fit(pieces[0]), items, rejected
        # one read of the schema for every piece (it holds the columns of each: it only grows)
        schema = self.dataset.schema
        table = pa.concat_tables([self.dataset.fit(p, schema) for p in pieces])
        order = sorted(range(len(items)), key=items.__getitem__)
        if order != list(range(len(items))):  # keep rows in line order
            table = table.take(pa.array(order, pa.int64()))
            items = [items[i] for i in order]
        return table, items, rejected

    # -- writing -------------------------------------------------------------------------

    def open(self, stream: BinaryIO, frame: Any) -> ArrowFrameWriter | FastparquetFrameWriter:
        """Start a Parquet file in ``stream`` with ``frame``'s schema."""
        schema = frame.table.schema if isinstance(frame, ArrowFrame) else _arrow_of(frame)[0].schema
        if self.engine == "fastparquet":
            return FastparquetFrameWriter(stream, schema, self.settings)
        first = frame.table if isinstance(frame, ArrowFrame) else None
        return ArrowFrameWriter(stream, schema, self.settings, first=first, budget=self.budget)


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
