"""The pipeline: receive -> batch -> transform -> encode -> write -> acknowledge.

Kept as the stable import path; the parts live in three modules:
:mod:`~parquet_ingestor.runner` (threads, receive loop, lifecycle),
:mod:`~parquet_ingestor.commit` (files -> commit -> ack/nack, error routing) and
:mod:`~parquet_ingestor.layout` (partitions and keys); the settings in
:mod:`~parquet_ingestor.settings`.
"""

from __future__ import annotations

from .commit import CountingStream, FileResult, FlushResult, error_record
from .layout import OVERFLOW
from .runner import Pipeline
from .settings import PipelineSettings
from .tuning import SWITCH_INTERVAL

__all__ = [
    "OVERFLOW", "SWITCH_INTERVAL", "CountingStream", "FileResult", "FlushResult", "Pipeline",
    "PipelineSettings", "error_record",
]
