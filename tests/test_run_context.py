"""Sources see what they need at start: the batch limits, the in-flight budgets derived from
them, and --max-deliveries (a source with its own pending cap sizes itself from these)."""

from __future__ import annotations

from typing import Any

from parquet_ingestor import RunContext
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.pipeline import PipelineSettings
from parquet_ingestor.testing import MemorySource, run_pipeline


class CappedSource(MemorySource):
    """Like a JetStream consumer: asks for a pending cap of what the pipeline may hold."""

    context: Any = None
    max_ack_pending = 100

    def start(self, context: RunContext) -> None:
        self.context = context
        self.max_ack_pending = max(self.max_ack_pending,
                                   context.in_flight_messages(message_bytes=64) or 0)


def test_start_gets_the_batch_limits_and_in_flight_budgets() -> None:
    limits = BatchLimits(max_bytes=64 * 1000, max_records=500, max_age=0.2)
    source = CappedSource([b'{"a": 1}'] * 10)
    run_pipeline(source, settings=PipelineSettings(batch=limits, workers=3, exit_when_idle=0.5,
                                                   max_deliveries=4))
    context = source.context
    assert context.batch == limits and context.workers == 3 and context.max_deliveries == 4
    assert context.batches_held == 7  # one filling, three queued, three writing
    assert context.in_flight_messages(message_bytes=64) == 500 * 7  # max_records binds
    assert context.in_flight_messages(message_bytes=1000) == 64 * 7  # max_bytes binds
    assert context.in_flight_bytes == 64 * 1000 * 7
    assert source.max_ack_pending == 3500


def test_a_context_without_limits_says_so() -> None:
    context = RunContext(workers=2, metrics=None)
    assert context.in_flight_messages() is None and context.in_flight_bytes is None
