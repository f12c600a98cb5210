"""Registers the ``parquet`` encoder. Stays light: pyarrow is imported only when it is built."""

from __future__ import annotations

from typing import Any

from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.options import Option

DEFAULT_ROW_GROUP_SIZE = 131_072

PARQUET_OPTIONS = (
    Option("engine", default="pyarrow", choices=("pyarrow", "fastparquet"),
           help="library that writes the file (fastparquet buffers the whole frame)"),
    Option("compression", default="snappy", choices=("snappy", "zstd", "gzip", "lz4", "none"),
           help="page compression codec"),
    Option("compression_level", "int", help="codec level (zstd 1-22, gzip 1-9); codec default if unset"),
    Option("row_group_size", "int", default=DEFAULT_ROW_GROUP_SIZE, min=1,
           help="rows per row group; the writer holds about one row group in memory"),
    Option("dictionary", default="auto", choices=("auto", "always", "never"),
           help="dictionary encoding: auto picks the low-cardinality columns from a sample of "
                "each file's rows; always; never (pyarrow engine)"),
    Option("schema", help="JSON file (column -> Arrow type) or a class 'package.module:Event' "
                          "(dataclass or pydantic model); inferred per batch if unset"),
    Option("on_schema_change", default="evolve", choices=("evolve", "strict"),
           help="evolve keeps new fields and lets types widen; strict drops new fields and "
                "rejects records that do not match"),
)


@hookimpl
def ingest_register_encoders(register: Any) -> None:
    register("parquet", "parquet_ingestor_parquet.encoder:ParquetEncoder",
             options=PARQUET_OPTIONS, help="Apache Parquet files (pyarrow or fastparquet)")
