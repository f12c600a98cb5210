"""Registers the ``sqs`` source. Light on purpose: boto3 is imported only when the source is built."""

from __future__ import annotations

from typing import Any

from parquet_ingestor.hookspecs import hookimpl

from .options import SQS_OPTIONS


@hookimpl
def ingest_register_sources(register: Any) -> None:
    register(
        "sqs",
        "parquet_ingestor_sqs.source:SqsSource",
        options=SQS_OPTIONS,
        help="Amazon SQS: long polling, leases extended while batches fill, batch acks",
    )
