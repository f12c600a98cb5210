"""Every hook a plugin can implement, in one place.

A plugin is a module (or object) registered under the ``parquet_ingestor`` entry-point group::

    # pyproject.toml
    [project.entry-points.parquet_ingestor]
    kafka = "parquet_ingestor_kafka.plugin"

    # parquet_ingestor_kafka/plugin.py
    from parquet_ingestor import Option, hookimpl

    @hookimpl
    def ingest_register_sources(register):
        register("kafka", "parquet_ingestor_kafka.source:KafkaSource",
                 options=[Option("brokers", required=True, help="bootstrap servers")])

Hooks come in two kinds. **Register hooks** run once per process and name components; the
factory may be a ``"module:attr"`` string so heavy imports wait until the component is used.
**Observer hooks** run once per pipeline or per batch, never per record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .plugins import Register

PROJECT = "parquet_ingestor"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ingest_register_sources(register: Register) -> None:
    """Register sources: ``register(name, factory, options=[Option...], help="...")``.

    ``factory(**options)`` returns an object with the :class:`~parquet_ingestor.interfaces.Source`
    methods; it may be a callable or a ``"module:attr"`` string imported on first use.
    """


@hookspec
def ingest_register_transformers(register: Register) -> None:
    """Register transformers, the same way as sources (see ``Transformer``)."""


@hookspec
def ingest_register_encoders(register: Register) -> None:
    """Register encoders, the same way as sources (see ``Encoder``)."""


@hookspec
def ingest_register_sinks(register: Register) -> None:
    """Register sinks, the same way as sources (see ``Sink``)."""


@hookspec
def ingest_register_metrics_exporters(register: Register) -> None:
    """Register metrics exporters, the same way as sources: ``factory(**options)`` returns a
    :class:`~parquet_ingestor.metrics.MetricsAdapter`. A run uses it with ``--metrics-exporter
    NAME`` and ``--metrics-exporter-opt NAME.KEY=VALUE``."""


@hookspec
def ingest_register_commands(cli: Any) -> None:
    """Add subcommands to the ``ingest`` click group (``cli.command()``), as datasette does."""


@hookspec
def ingest_pipeline_started(pipeline: Any) -> None:
    """A pipeline started; ``pipeline.metrics`` and ``pipeline.settings`` are available."""


@hookspec
def ingest_batch_flushed(pipeline: Any, result: Any) -> None:
    """A batch was settled; ``result`` is a :class:`~parquet_ingestor.pipeline.FlushResult`
    (files written, rows, bytes, acked, rejected, duration, error)."""


@hookspec
def ingest_messages_rejected(pipeline: Any, rejections: Any, destination: str) -> None:
    """Messages were rejected; ``destination`` is ``"error-sink"`` or ``"source"`` (nacked)."""


@hookspec
def ingest_pipeline_stopped(pipeline: Any, metrics: Any) -> None:
    """A pipeline stopped (drained, idle, signalled or failed); ``metrics`` has the totals."""
