"""Plugins and pipelines isolated from each other at run time (#12 item 7): observer hooks
called one by one, the process-wide tuning undone exactly once (two pipelines in one process),
a bounded collector pause, and ``Pipeline.files`` bounded."""

from __future__ import annotations

import gc
import os
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

import click
import pytest
from parquet_ingestor import gcpause, runner, tuning
from parquet_ingestor.hookspecs import hookimpl
from parquet_ingestor.message import Message
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.plugins import build_registry, call_each
from parquet_ingestor.testing import MemorySink, MemorySource, run_pipeline


def plugin(name: str, **hooks: Any) -> tuple[str, types.ModuleType]:
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    return name, module


def test_an_observer_that_raises_does_not_silence_the_others() -> None:
    seen: list[str] = []

    def boom(pipeline: Any, result: Any) -> None:
        raise RuntimeError("observer bug")

    def count(pipeline: Any, result: Any) -> None:
        seen.append(f"flushed {result.messages}")

    def started(pipeline: Any) -> None:
        raise ValueError("start observer bug")

    def stopped(pipeline: Any, metrics: Any) -> None:
        seen.append("stopped")

    # registered both ways round: pluggy calls the last registered first
    for order in ((plugin("a", ingest_batch_flushed=boom, ingest_pipeline_started=started),
                   plugin("b", ingest_batch_flushed=count, ingest_pipeline_stopped=stopped)),
                  (plugin("b", ingest_batch_flushed=count, ingest_pipeline_stopped=stopped),
                   plugin("a", ingest_batch_flushed=boom, ingest_pipeline_started=started))):
        seen.clear()
        registry = build_registry(list(order), entry_points_enabled=False)
        outcome = run_pipeline([b'{"a": 1}', b'{"a": 2}'], hooks=registry.hook)
        assert outcome.rows_written == 2
        assert seen == ["flushed 2", "stopped"]


def test_each_plugin_registers_its_commands_even_when_another_raises() -> None:
    def bad(cli: Any) -> None:
        raise RuntimeError("broken plugin")

    def good(cli: Any) -> None:
        @cli.command("hello")
        def hello() -> None:
            """Say hello."""

    group = click.Group("ingest")
    for order in ((plugin("bad", ingest_register_commands=bad),
                   plugin("good", ingest_register_commands=good)),
                  (plugin("good", ingest_register_commands=good),
                   plugin("bad", ingest_register_commands=bad))):
        group.commands.clear()
        registry = build_registry(list(order), entry_points_enabled=False)
        failed = call_each(registry.hook.ingest_register_commands, log_errors=False, cli=group)
        assert [name for name, _ in failed] == ["bad"]
        assert "hello" in group.commands


class Gate(MemorySource):
    """A source that, on its first receive, says so and waits to be let go; then drains."""

    def __init__(self, bodies: Sequence[bytes]) -> None:
        super().__init__(bodies)
        self.receiving = threading.Event()
        self.go = threading.Event()

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        self.receiving.set()
        assert self.go.wait(30)
        return super().receive(max_messages, timeout)


def start(pipeline: Pipeline) -> threading.Thread:
    thread = threading.Thread(target=pipeline.run)
    thread.start()
    return thread


def gate_pipeline() -> tuple[Pipeline, Gate]:
    from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder

    source = Gate([b'{"a": 1}'])
    return Pipeline(source, MemorySink(), JsonlEncoder(), settings=PipelineSettings(workers=1)), source


@pytest.mark.parametrize("first_to_stop", ["a", "b"])
def test_two_pipelines_in_one_process_leave_the_interpreter_as_found(first_to_stop: str) -> None:
    before_switch, before_gc = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(0.001)
    try:
        (a, gate_a), (b, gate_b) = gate_pipeline(), gate_pipeline()
        thread_a = start(a)
        assert gate_a.receiving.wait(30)
        thread_b = start(b)
        assert gate_b.receiving.wait(30)
        assert sys.getswitchinterval() == pytest.approx(tuning.SWITCH_INTERVAL)
        assert gc.get_threshold()[0] >= tuning.GEN0_THRESHOLD
        gates = {"a": (gate_a, thread_a), "b": (gate_b, thread_b)}
        first = gates.pop(first_to_stop)
        (last,) = gates.values()
        first[0].go.set()
        first[1].join(30)
        assert not first[1].is_alive()
        # the other pipeline still runs: still tuned
        assert sys.getswitchinterval() == pytest.approx(tuning.SWITCH_INTERVAL)
        assert gc.get_threshold()[0] >= tuning.GEN0_THRESHOLD
        last[0].go.set()
        last[1].join(30)
        assert sys.getswitchinterval() == pytest.approx(0.001)
        assert gc.get_threshold() == before_gc
    finally:
        sys.setswitchinterval(before_switch)
        gc.set_threshold(*before_gc)


def test_a_value_the_application_changes_during_a_run_is_kept() -> None:
    before_gc = gc.get_threshold()
    try:
        with tuning.tuned():
            gc.set_threshold(1234, *before_gc[1:])
        assert gc.get_threshold()[0] == 1234
    finally:
        gc.set_threshold(*before_gc)


def test_gc_pause_restores_the_collector_and_collects_during_long_overlaps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert gc.isenabled()
    monkeypatch.setattr(gcpause, "MAX_PAUSE", 0.0)
    collections: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        outer_in, inner_done = threading.Event(), threading.Event()

        def outer() -> None:
            with gcpause.gc_paused():
                outer_in.set()
                assert inner_done.wait(30)

        thread = threading.Thread(target=outer)
        thread.start()
        assert outer_in.wait(30)
        with gcpause.gc_paused():
            assert not gc.isenabled()
        # left while the other thread still pauses: the young generation was collected
        assert not gc.isenabled() and 0 in collections
        inner_done.set()
        thread.join(30)
        assert gc.isenabled()
        gc.disable()
        with gcpause.gc_paused():
            pass
        assert not gc.isenabled()  # a collector the user switched off stays off
    finally:
        gc.enable()
        gc.callbacks.remove(watch)


def test_scoped_env_puts_the_variable_back() -> None:
    name = "PARQUET_INGESTOR_TEST_SCOPED"
    os.environ.pop(name, None)
    with tuning.scoped_env(name, "system"):
        assert os.environ[name] == "system"
    assert name not in os.environ
    os.environ[name] = "mine"
    try:
        with tuning.scoped_env(name, "system"):
            assert os.environ[name] == "mine"
        assert os.environ[name] == "mine"
    finally:
        del os.environ[name]


def test_pipeline_files_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from parquet_ingestor.batcher import BatchLimits

    monkeypatch.setattr(runner, "RECENT_FILES", 3)
    settings = PipelineSettings(batch=BatchLimits(max_bytes=1 << 20, max_records=2, max_age=0),
                                workers=1)
    outcome = run_pipeline([b'{"a": %d}' % i for i in range(20)], settings=settings)
    assert len(outcome.files) == 10 and outcome.rows_written == 20
    assert len(outcome.pipeline.files) == 3
    assert list(outcome.pipeline.files) == outcome.files[-3:]
