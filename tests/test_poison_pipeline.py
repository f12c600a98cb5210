"""Poison messages on a source without a dead-letter queue: deliveries are bounded, the run
still exits when idle, and it reports the message and exits 1; with an error sink the message
lands there. ``--max-deliveries 0`` is refused with one line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.pipeline import PipelineSettings
from parquet_ingestor.testing import MemorySink, MemorySource, run_pipeline

GOOD = [json.dumps({"id": i}) for i in range(20)]


def settings(max_deliveries: int | None) -> PipelineSettings:
    return PipelineSettings(batch=BatchLimits(max_bytes=1 << 20, max_age=0.2), workers=2,
                            exit_when_idle=1.5, max_deliveries=max_deliveries)


@pytest.mark.timeout(60)
def test_without_an_error_sink_a_poison_message_is_bounded_and_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    source = MemorySource([*GOOD[:10], "{not json", *GOOD[10:]], redeliver=10_000)
    with caplog.at_level(logging.WARNING):
        outcome = run_pipeline(source, settings=settings(3), timeout=50)
    assert outcome.pipeline.stopped_reason == "idle"  # the poison message did not keep it busy
    assert sorted(r["id"] for r in outcome.rows) == list(range(20))
    bad = source.messages[10]
    assert 3 <= source.deliveries[bad.id] <= 6, source.deliveries[bad.id]  # 1 s, 2 s... apart
    assert bad not in outcome.acked
    assert outcome.pipeline.poisoned == 1
    assert outcome.pipeline.metrics.counts["poisoned"] == 1
    named = [r for r in caplog.records if "m10" in r.getMessage() and "max-deliveries" in
             r.getMessage()]
    assert len(named) == 1, [r.getMessage() for r in caplog.records]


@pytest.mark.timeout(60)
def test_with_an_error_sink_it_lands_there_and_is_acked() -> None:
    source = MemorySource([*GOOD, "{not json"], redeliver=10)
    errors = MemorySink()
    outcome = run_pipeline(source, settings=settings(3), error_sink=errors, timeout=50)
    assert [e["body"] for e in outcome.errors] == ["{not json"]
    assert source.deliveries["m20"] == 1 and source.messages[20] in outcome.acked
    assert outcome.pipeline.poisoned == 0


@pytest.mark.timeout(60)
def test_no_limit_keeps_todays_behaviour() -> None:
    source = MemorySource([*GOOD, "{not json"], redeliver=4)
    outcome = run_pipeline(source, settings=settings(None), timeout=50)
    assert source.deliveries["m20"] == 5 and outcome.pipeline.poisoned == 0


def test_max_deliveries_zero_exits_2_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from parquet_ingestor.cli import main; main()",
         "--source", "file", "--source-opt", "path=/dev/null", "--sink", "file",
         "--sink-opt", "path=/tmp/x", "--max-deliveries", "0"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--max-deliveries" in done.stderr, done.stderr
