"""parquet-ingestor: turn streaming messages into time-partitioned Parquet files.

The public API, small on purpose::

    from parquet_ingestor import Pipeline, PipelineSettings, Message, Option, hookimpl
"""

from __future__ import annotations

from .batcher import Batcher, BatchLimits
from .errors import ConfigError, IngestError, PartialAckError, PluginError, RejectMessage
from .gcpause import gc_paused
from .hookspecs import hookimpl
from .interfaces import (
    BaseSink,
    BaseSource,
    Decoded,
    Encoder,
    Frame,
    FrameWriter,
    FunctionTransformer,
    RunContext,
    Sink,
    SinkWriter,
    Source,
    Transformer,
    TransformResult,
)
from .keys import KeyTemplate
from .message import Message, Rejection
from .metrics import Metrics, MetricsAdapter
from .options import Option
from .pipeline import FileResult, FlushResult, Pipeline, PipelineSettings
from .plugins import Register
from .records import JsonLines, ListFrame, RecordList
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "BaseSink", "BaseSource", "BatchLimits", "Batcher", "ConfigError", "Decoded", "Encoder",
    "FileResult", "FlushResult", "Frame", "FrameWriter", "FunctionTransformer", "IngestError",
    "JsonLines", "KeyTemplate", "ListFrame", "Message", "Metrics", "MetricsAdapter", "Option", "PartialAckError",
    "Pipeline", "PipelineSettings", "PluginError", "RecordList", "Register", "Rejection", "RejectMessage",
    "RetryPolicy", "RunContext", "Sink", "SinkWriter", "Source", "TransformResult", "Transformer",
    "__version__", "gc_paused", "hookimpl",
]
