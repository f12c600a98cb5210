"""Registers the ``iceberg`` sink. Light on purpose: pyiceberg is imported when the sink starts."""

from __future__ import annotations

from typing import Any

from parquet_ingestor.hookspecs import hookimpl

from .options import ICEBERG_OPTIONS


@hookimpl
def ingest_register_sinks(register: Any) -> None:
    register(
        "iceberg",
        "parquet_ingestor_iceberg.sink:IcebergSink",
        options=ICEBERG_OPTIONS,
        help="Apache Iceberg table (pyiceberg): one snapshot per commit set, embedded SQLite catalog",
    )


@hookimpl
def ingest_register_commands(cli: Any) -> None:
    """``ingest iceberg-demo``: JSON -> Parquet -> a local Iceberg table, then its snapshots."""
    from .demo import iceberg_demo_command

    cli.add_command(iceberg_demo_command)
