"""parquet-ingestor: turn streaming messages into time-partitioned Parquet files.

The public API, small on purpose::

    from parquet_ingestor import Pipeline, PipelineSettings, Message, Option, hookimpl
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        FrameGroup,
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

#: where each public name lives: imported on first use (PEP 562), so that a plugin's
#: ``from parquet_ingestor import Option, hookimpl`` or ``ingest --help`` does not import the
#: whole pipeline
_HOMES = {
    "batcher": ("Batcher", "BatchLimits"),
    "errors": ("ConfigError", "IngestError", "PartialAckError", "PluginError", "RejectMessage"),
    "gcpause": ("gc_paused",),
    "hookspecs": ("hookimpl",),
    "interfaces": ("BaseSink", "BaseSource", "Decoded", "Encoder", "Frame", "FrameGroup",
                   "FrameWriter",
                   "FunctionTransformer", "RunContext", "Sink", "SinkWriter", "Source",
                   "Transformer", "TransformResult"),
    "keys": ("KeyTemplate",),
    "message": ("Message", "Rejection"),
    "metrics": ("Metrics", "MetricsAdapter"),
    "options": ("Option",),
    "pipeline": ("FileResult", "FlushResult", "Pipeline", "PipelineSettings"),
    "plugins": ("Register",),
    "records": ("JsonLines", "ListFrame", "RecordList"),
    "retry": ("RetryPolicy",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))


__version__ = "0.1.0"

__all__ = [
    "BaseSink", "BaseSource", "BatchLimits", "Batcher", "ConfigError", "Decoded", "Encoder",
    "FileResult", "FlushResult", "Frame", "FrameGroup", "FrameWriter", "FunctionTransformer", "IngestError",
    "JsonLines", "KeyTemplate", "ListFrame", "Message", "Metrics", "MetricsAdapter", "Option", "PartialAckError",
    "Pipeline", "PipelineSettings", "PluginError", "RecordList", "Register", "Rejection", "RejectMessage",
    "RetryPolicy", "RunContext", "Sink", "SinkWriter", "Source", "TransformResult", "Transformer",
    "__version__", "gc_paused", "hookimpl",
]
