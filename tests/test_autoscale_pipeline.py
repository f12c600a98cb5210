"""``--workers auto`` in a real pipeline: up against a sink with 100 ms commits, down under memory
pressure (an injected signal), every message written once; and its bad input."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.autoscale import AutoscalePolicy
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.testing import MemorySink, MemorySource, read_rows, wait_for

N = 4000  # 400 batches of 10: 40 s of commits on one worker, far more than the test needs

#: short intervals, so the test takes seconds; hold short, so a probe that the loaded machine
#: judged wrongly is tried again soon
POLICY = AutoscalePolicy(interval=0.5, up_cooldown=0.5, down_cooldown=1.0, hold=1.0)


class SlowCommitSink(MemorySink):
    """A MemorySink whose every commit takes ``delay`` seconds (a remote store's latency;
    sleeping releases the GIL as network I/O does)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        writer = super().open(key, content_type, metadata)
        commit = writer.commit

        def slow_commit() -> None:
            time.sleep(self.delay)
            commit()

        writer.commit = slow_commit  # type: ignore[method-assign]
        return writer


def start(pipeline: Pipeline) -> threading.Thread:
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    return thread


def stop_and_check(pipeline: Pipeline, thread: threading.Thread, source: MemorySource,
                   sink: MemorySink) -> None:
    """Stop (a drain), then every message received was written once and acked, and every
    other is still at the source."""
    pipeline.stop()
    thread.join(60)
    assert not thread.is_alive()
    rows = [row["n"] for key, data in sink.objects.items() for row in read_rows(data, key)]
    acked = [m.id for m in source.acked]
    assert len(acked) == len(set(acked)) == len(rows) == len(set(rows)) > 0
    assert sorted(rows) == sorted(int(m[1:]) for m in acked)
    assert not source.nacked


def make(memory: Callable[[], float] | None = None, low: int = 1, high: int = 4,
         ) -> tuple[Pipeline, MemorySource, MemorySink]:
    source = MemorySource(json.dumps({"n": i}) for i in range(N))
    sink = SlowCommitSink(0.1)
    settings = PipelineSettings(workers="auto", min_workers=low, max_workers=high,
                                batch=BatchLimits(max_records=10, max_age=30), autoscale=POLICY,
                                receive_max=10)  # a drain then flushes one batch, not 100
    return Pipeline(source, sink, JsonlEncoder(), None, settings, memory_pressure=memory), \
        source, sink


def test_scales_up_against_a_sink_with_slow_commits(caplog: pytest.LogCaptureFixture) -> None:
    pipeline, source, sink = make()
    assert pipeline.workers == 1  # auto starts at --min-workers
    with caplog.at_level(logging.INFO, "parquet_ingestor"):
        thread = start(pipeline)
        try:
            assert wait_for(lambda: pipeline.workers == 4), pipeline.workers
        finally:
            stop_and_check(pipeline, thread, source, sink)
    ups = [r for r in caplog.records if "autoscale: workers" in r.message]
    assert ups and ups[0].levelno == logging.INFO and "flush queue full" in ups[0].message
    assert pipeline.metrics.counts["workers_scaled_up"] >= 2
    # the run ended every flush thread it started, retired or not
    assert not [t for t in threading.enumerate() if t.name.startswith("flush-")]


def test_scales_down_under_memory_pressure(caplog: pytest.LogCaptureFixture) -> None:
    pressure = [0.1]
    pipeline, source, sink = make(memory=lambda: pressure[0])
    with caplog.at_level(logging.INFO, "parquet_ingestor"):
        thread = start(pipeline)
        try:
            assert wait_for(lambda: pipeline.workers >= 3), pipeline.workers
            pressure[0] = 0.95  # e.g. RSS at 95% of --memory-limit
            assert wait_for(lambda: pipeline.workers == 1), pipeline.workers
            assert pipeline._queue.maxsize == 1  # the flush queue shrank with them
            # no growth while the pressure lasts, however backed up the queue is
            seen = int(pipeline.metrics.counts["workers_scaled_up"])
            decisions = pipeline.metrics.counts["workers_scaled_down"]
            assert wait_for(lambda: len(sink.commits) >= 20)
            assert pipeline.metrics.counts["workers_scaled_up"] == seen
            assert pipeline.workers == 1
        finally:
            stop_and_check(pipeline, thread, source, sink)
    downs = [r for r in caplog.records if "autoscale: workers" in r.message
             and r.levelno == logging.WARNING]
    assert downs and all("memory at 95% of the limit" in r.message for r in downs)
    assert decisions >= 1


def test_worker_bounds_are_checked() -> None:
    with pytest.raises(ConfigError, match="min_workers 5 is greater than max_workers 2"):
        PipelineSettings(workers="auto", min_workers=5, max_workers=2)
    assert PipelineSettings(workers=3).worker_bounds == (3, 3)
    assert PipelineSettings(workers="auto", max_workers=6).worker_bounds == (1, 6)


@pytest.mark.parametrize(("args", "needle"), [
    (["--workers", "auto", "--min-workers", "5", "--max-workers", "2"],
     "--min-workers 5 is greater than --max-workers 2"),
    (["--workers", "many"], "--workers: expected a whole number or auto, got 'many'"),
])
def test_bad_worker_options_exit_2_with_one_line(tmp_path: Path, run_ingest: Any,
                                                 args: list[str], needle: str) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    proc = run_ingest("--source", "file", "--source-opt", "path=in.jsonl", "--sink", "file",
                      "--sink-opt", "path=o", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"ingest: error: {needle}\n"


def test_workers_auto_from_the_environment_and_toml(tmp_path: Path, run_ingest: Any) -> None:
    (tmp_path / "in.jsonl").write_text("".join(f'{{"id": {i}}}\n' for i in range(50)))
    (tmp_path / "run.toml").write_text('[pipeline]\nworkers = "auto"\nmax_workers = 3\n')
    proc = run_ingest("--config", "run.toml", "--source", "file", "--source-opt",
                      "path=in.jsonl", "--sink", "file", "--sink-opt", "path=o",
                      "--encoder", "jsonl", env={"INGEST_MIN_WORKERS": "2"})
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for f in (tmp_path / "o").rglob("*.jsonl")
            for line in f.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == list(range(50))
