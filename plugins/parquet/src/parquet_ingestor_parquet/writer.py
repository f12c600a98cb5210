"""FrameWriters: stream an ArrowFrame into an open sink writer as one Parquet file."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from .dataset import fitted, json_text
from .frame import ArrowFrame
from .schema import fingerprint

WRITE_BUFFER = 64 << 10  # bytes of encoded Parquet collected before one write to the sink
DICTIONARY_SAMPLE = 1024  # rows of a file's first frame looked at to choose dictionary columns
DICTIONARY_MAX_RATIO = 0.5  # distinct / non-null values in the sample at most, for a dictionary
DICTIONARY_MODES = ("auto", "always", "never")
#: Arrow bytes a writer buffers before writing a row group, unless row_group_bytes says.
ROW_GROUP_BYTES = 16 << 20
#: Arrow bytes all open writers of an encoder buffer together, at most.
WRITERS_BUDGET = 16 << 20


@dataclass(frozen=True)
class WriteSettings:
    """How files are written (the encoder's options, validated)."""

    compression: str = "snappy"  # snappy zstd gzip lz4 none
    compression_level: int | None = None
    row_group_size: int = 131_072
    dictionary: str = "auto"  # auto: per column, from a sample; always; never
    row_group_bytes: int = ROW_GROUP_BYTES  # Arrow bytes buffered before a row group is written


class WriterBudget:
    """The memory the open writers of one encoder may buffer together: a writer whose rows
    would take the total past ``limit`` writes its row group early. Thread-safe."""

    def __init__(self, limit: int = WRITERS_BUDGET) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> bool:
        """Count ``nbytes`` more; False when that passes the limit (write early)."""
        with self._lock:
            self.used += nbytes
            return self.used <= self.limit

    def give_back(self, nbytes: int) -> None:
        with self._lock:
            self.used -= nbytes


@functools.cache
def writer_name() -> str:
    try:
        return f"parquet-ingestor {version('parquet-ingestor')}"
    except PackageNotFoundError:
        return "parquet-ingestor"


def file_metadata(schema: pa.Schema, metadata: Mapping[str, str]) -> dict[str, str]:
    """The core's metadata plus ``ingest.writer`` (unless given) and ``ingest.schema_fingerprint``."""
    result = {"ingest.writer": writer_name()}
    result.update({str(k): str(v) for k, v in metadata.items()})
    result["ingest.schema_fingerprint"] = fingerprint(schema)
    return result


def dictionary_columns(table: pa.Table, sample: int = DICTIONARY_SAMPLE) -> list[str]:
    """Parquet column paths worth dictionary encoding: those whose first ``sample`` rows hold
    at most ``DICTIONARY_MAX_RATIO`` distinct values per value (``type``, ``country``).

    Building a dictionary for ids, payloads or timestamps, then dropping it when it overflows,
    cost ~30% of the write time and made files larger; low-cardinality columns still get one.
    """
    head = table.slice(0, sample)
    chosen: list[str] = []
    for name, column in zip(head.column_names, head.columns, strict=True):
        array = pa.concat_arrays(column.chunks) if column.num_chunks != 1 else column.chunk(0)
        for path, leaf, repeated in _leaves(array, name, False):
            values = len(leaf) - leaf.null_count
            # fastparquet reads plain-encoded columns inside lists back as nulls: keep those
            if repeated or values == 0 or _distinct(leaf) <= DICTIONARY_MAX_RATIO * values:
                chosen.append(path)
    return chosen


def _leaves(array: pa.Array, path: str, repeated: bool) -> list[tuple[str, pa.Array, bool]]:
    """(Parquet column path, values, inside a list?) for every leaf under ``array``, with
    the paths pyarrow gives them."""
    kind = array.type
    if pa.types.is_struct(kind):
        return [leaf for i in range(kind.num_fields)
                for leaf in _leaves(array.field(i), f"{path}.{kind.field(i).name}", repeated)]
    if pa.types.is_map(kind):
        return (_leaves(array.keys, f"{path}.key_value.key", True)
                + _leaves(array.items, f"{path}.key_value.value", True))
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)):
        return _leaves(array.flatten(), f"{path}.list.element", True)
    return [(path, array, repeated)]


def _distinct(leaf: pa.Array) -> int:
    import pyarrow.compute as pc

    try:
        return int(pc.count_distinct(leaf).as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return len(leaf)  # a type Arrow cannot hash: no dictionary


class _Unclosable:
    """Passes writes to the sink's stream; closing it does not close the stream (the sink commits)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.closed = False

    def write(self, data: Any) -> int:
        written = self._stream.write(data)
        return len(data) if written is None else written

    def tell(self) -> int:
        return self._stream.tell()

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> _Unclosable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArrowFrameWriter:
    """pyarrow's ParquetWriter over the stream. Frames are buffered until a row group's
    worth (``row_group_size`` rows or ``row_group_bytes``), so files that collect small
    frames from many flushes still get large row groups; a shared :class:`WriterBudget`
    makes writers write theirs early when the open writers together hold too much.
    """

    def __init__(self, stream: BinaryIO, schema: pa.Schema, settings: WriteSettings,
                 memory_pool: pa.MemoryPool | None = None,
                 first: pa.Table | None = None, budget: WriterBudget | None = None) -> None:
        self.schema = schema
        self.settings = settings
        self._budget = budget
        self._pending: list[pa.Table] = []
        #: rows written into this writer but not yet into the file (the core adds their
        #: estimated size to the file's when it compares it with --target-file-size)
        self.buffered_rows = 0
        self._buffered_bytes = 0
        self._sink = pa.PythonFile(_Unclosable(stream), mode="w")
        # Every write into a Python stream takes the GIL from the encoding thread; unbuffered,
        # each page was one write, and the flush threads queued for the GIL. 64 KiB chunks keep
        # streaming (the sink still gets the file as it is encoded) with a few GIL takes a file.
        self._buffered = pa.BufferedOutputStream(self._sink, WRITE_BUFFER)
        self._writer = pq.ParquetWriter(
            self._buffered, schema,
            compression=settings.compression,
            compression_level=settings.compression_level,
            use_dictionary=_use_dictionary(settings.dictionary, first),
            write_statistics=True,
            memory_pool=memory_pool,
        )

    def fits(self, frame: ArrowFrame) -> bool:
        """Whether ``frame`` goes into this file as it is (:func:`fits`)."""
        return fits(frame.table, self.schema)

    def write(self, frame: ArrowFrame) -> None:
        table = _conform(frame.table, self.schema)
        nbytes = table.nbytes
        self._pending.append(table)
        self.buffered_rows += table.num_rows
        self._buffered_bytes += nbytes
        fits = self._budget.take(nbytes) if self._budget is not None else True
        if (not fits or self.buffered_rows >= self.settings.row_group_size
                or self._buffered_bytes >= self.settings.row_group_bytes):
            self._write_pending()

    def _write_pending(self) -> None:
        """Write the buffered rows as row groups of at most ``row_group_size`` rows."""
        if not self._pending:
            return
        table = self._pending[0] if len(self._pending) == 1 else pa.concat_tables(self._pending)
        self._pending = []
        try:
            size = self.settings.row_group_size
            for start in range(0, table.num_rows, size):
                self._writer.write_table(table.slice(start, size), row_group_size=size)
        finally:
            if self._budget is not None:
                self._budget.give_back(self._buffered_bytes)
            self.buffered_rows = self._buffered_bytes = 0

    def __del__(self) -> None:  # a file dropped unclosed gives its share of the budget back
        if self._budget is not None and self._buffered_bytes:
            self._budget.give_back(self._buffered_bytes)
            self._buffered_bytes = 0

    def close(self, metadata: Mapping[str, str]) -> None:
        self._write_pending()
        self._writer.add_key_value_metadata(file_metadata(self.schema, metadata))
        self._writer.close()
        self._buffered.close()  # flushes the last chunk into the sink's stream
        self._sink.close()  # closes the wrapper only; the sink's stream stays open


def _use_dictionary(mode: str, first: pa.Table | None) -> bool | list[str]:
    if mode == "never":
        return False
    if mode == "always" or first is None or first.num_rows == 0:
        return True
    return dictionary_columns(first)


class FastparquetFrameWriter:
    """fastparquet writes the file at ``close``: it buffers every frame written until then.

    fastparquet cannot write nested Parquet types: list and struct columns are stored as JSON
    text (JSON logical type), decimals as their text, and timestamps as int64 microseconds (UTC).
    """

    def __init__(self, stream: BinaryIO, schema: pa.Schema, settings: WriteSettings) -> None:
        self.stream = stream
        self.schema = schema
        self.settings = settings
        self._tables: list[pa.Table] = []

    def fits(self, frame: ArrowFrame) -> bool:
        """Whether ``frame`` goes into this file as it is (:func:`fits`)."""
        return fits(frame.table, self.schema)

    def write(self, frame: ArrowFrame) -> None:
        self._tables.append(_conform(frame.table, self.schema))

    def close(self, metadata: Mapping[str, str]) -> None:
        import fastparquet
        import pandas as pd

        table = pa.concat_tables(self._tables) if self._tables else self.schema.empty_table()
        self._tables = []
        frame, encodings = _to_pandas(table, pd)
        stream = _Unclosable(self.stream)
        compression: Any = _FASTPARQUET_CODECS[self.settings.compression]
        if compression and self.settings.compression_level is not None:
            compression = {"_default": {"type": compression,
                                        "args": {"level": self.settings.compression_level}}}
        fastparquet.write(
            "frame.parquet", frame,
            row_group_offsets=self.settings.row_group_size,
            compression=compression,
            open_with=lambda _path, _mode="wb": stream,
            object_encoding=encodings,
            times="int64",
            custom_metadata=file_metadata(self.schema, metadata),
            stats=True,
            write_index=False,
            has_nulls=True,
        )


_FASTPARQUET_CODECS = {"snappy": "SNAPPY", "zstd": "ZSTD", "gzip": "GZIP", "lz4": "LZ4_RAW",
                       "none": None}


def _to_pandas(table: pa.Table, pd: Any) -> tuple[Any, dict[str, str]]:
    """A DataFrame fastparquet can write: nullable ints and bools, nested values as objects."""
    columns: dict[str, Any] = {}
    encodings: dict[str, str] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_nested(kind):
            columns[name] = pd.Series([json.loads(v) if v is not None else None for v in
                                       (_json_values(column))], dtype=object)
            encodings[name] = "json"
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = pd.Series(column.to_pylist(), dtype=object)
            encodings[name] = "utf8"
        elif pa.types.is_decimal(kind):  # fastparquet writes no decimals: exact text
            columns[name] = pd.Series([None if v is None else str(v) for v in column.to_pylist()],
                                      dtype=object)
            encodings[name] = "utf8"
        elif pa.types.is_binary(kind):
            columns[name] = pd.Series(column.to_pylist(), dtype=object)
            encodings[name] = "bytes"
        elif pa.types.is_integer(kind):
            columns[name] = column.to_pandas(types_mapper={kind: pd.Int64Dtype()}.get)
        elif pa.types.is_boolean(kind):
            columns[name] = column.to_pandas(types_mapper={kind: pd.BooleanDtype()}.get)
        elif pa.types.is_null(kind):
            columns[name] = pd.Series([None] * len(column), dtype=object)
            encodings[name] = "utf8"
        elif pa.types.is_timestamp(kind):
            unit = kind.unit if kind.unit in ("ms", "us") else "us"
            cast = column.cast(pa.timestamp(unit, tz=kind.tz))
            columns[name] = cast.to_pandas()
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns), encodings


def _json_values(column: pa.ChunkedArray) -> list[str | None]:
    return [json_text(v) for v in column.to_pylist()]


def fits(table: pa.Table, schema: pa.Schema) -> bool:
    """Whether a frame's rows go into a file of ``schema`` with nothing lost: each of its
    columns is in the file with the same type (a frame from before a column was added fits;
    one with a new column or a struct that gained fields does not)."""
    if table.schema.equals(schema):
        return True
    for field in table.schema:
        index = schema.get_field_index(field.name)
        if index < 0:
            return False
        if not (field.type.equals(schema.field(index).type) or pa.types.is_null(field.type)):
            return False
    return True


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A frame that :func:`fits` in the file's schema: its columns in the file's order, nulls
    for those it lacks, cast where only nullability differs."""
    if table.schema.equals(schema):
        return table
    if not fits(table, schema):  # never drop a column: the core asks fits() first
        raise ValueError(f"a frame with columns {table.schema.names} does not fit a file of "
                         f"{schema.names}")
    return fitted(table, schema)
