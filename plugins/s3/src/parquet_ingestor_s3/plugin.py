"""Registers the ``s3`` sink. Light on purpose: boto3 is imported only when the sink is built."""

from __future__ import annotations

from typing import Any

from parquet_ingestor.hookspecs import hookimpl

from .options import S3_OPTIONS


@hookimpl
def ingest_register_sinks(register: Any) -> None:
    register(
        "s3",
        "parquet_ingestor_s3.sink:S3Sink",
        options=S3_OPTIONS,
        help="Amazon S3 (or S3-compatible): atomic streaming multipart uploads",
    )
