"""Registers the ``parquet`` encoder. Stays light: pyarrow is imported only when it is built."""

from __future__ import annotations

from typing import Any

from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option

from .compat import PROFILES
from .limits import DEEPEST_READABLE, DEFAULT_MAX_DEPTH, DEFAULT_MAX_KEYS

DEFAULT_ROW_GROUP_SIZE = 131_072

PARQUET_OPTIONS = (
    Option("engine", default="pyarrow", choices=("pyarrow", "fastparquet"),
           help="library that writes the file (fastparquet buffers the whole frame)"),
    Option("compression", default="snappy", choices=("snappy", "zstd", "gzip", "lz4", "none"),
           help="page compression codec"),
    Option("compression_level", "int", help="codec level (zstd 1-22, gzip 1-9); codec default if unset"),
    Option("row_group_size", "int", default=DEFAULT_ROW_GROUP_SIZE, min=1,
           help="most rows per row group; the writer holds about one row group in memory"),
    Option("row_group_bytes", "size", min=1,
           help="Arrow bytes a file's writer buffers before it writes a row group (or "
                "row_group_size rows); open writers share a budget and write early when it "
                "is tight [default: 16MiB, at most a quarter of --target-file-size]"),
    Option("dictionary", default="auto", choices=("auto", "always", "never"),
           help="dictionary encoding: auto picks the low-cardinality columns from a sample of "
                "each file's rows; always; never (pyarrow engine)"),
    Option("schema", help="JSON file (column -> Arrow type) or a class 'package.module:Event' "
                          "(dataclass or pydantic model); else inferred once per column and "
                          "kept (read back from the newest file at start)"),
    Option("on_schema_change", default="evolve", choices=("evolve", "strict"),
           help="evolve adds new fields as nullable columns; strict drops them; both keep "
                "every column's type and reject values that do not fit it"),
    Option("compat", default="all", choices=tuple(PROFILES),
           help="reader profile: all (what every engine reads), spark, trino, athena "
                "(ms timestamps), duckdb, s3tables (lower-case names)"),
    Option("timestamp_unit", choices=("ms", "us", "ns"),
           help="unit of timestamp columns (default: the compat profile's, us; Spark and "
                "Athena cannot read ns)"),
    Option("time_fields", "list",
           help="fields stored as timestamps from epoch seconds/ms too (the "
                "--partition-by event:FIELD field always is)"),
    Option("max_depth", "int", default=DEFAULT_MAX_DEPTH, min=1, max=DEEPEST_READABLE,
           help="deepest JSON nesting accepted; deeper messages are rejected"),
    Option("max_keys", "int", default=DEFAULT_MAX_KEYS, min=1,
           help="most keys in one JSON object; larger messages are rejected"),
)


@hookimpl
def ingest_register_encoders(register: Any) -> None:
    register("parquet", "parquet_ingestor_parquet.encoder:ParquetEncoder",
             options=PARQUET_OPTIONS, help="Apache Parquet files (pyarrow or fastparquet)")


@hookimpl
def ingest_register_commands(cli: Any) -> None:
    from .command import schema_command

    cli.add_command(schema_command)
