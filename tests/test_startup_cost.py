"""The fixed cost of a run: what ``ingest`` imports before it needs it, and how a run ends.

No timings are asserted: each test checks the mechanism that keeps a cost away (a module not
imported, a wait woken by an event rather than by its poll interval).
"""

from __future__ import annotations

import ctypes.util
import gc
import platform
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import parquet_ingestor
import pytest
from parquet_ingestor import cli, memory, runner
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.testing import MemorySink, MemorySource


def test_public_names_resolve_lazily() -> None:
    """Every name of ``__all__`` resolves, from the module ``__init__`` says it lives in."""
    for name in parquet_ingestor.__all__:
        value = getattr(parquet_ingestor, name)
        if name != "__version__":
            assert sys.modules[f"parquet_ingestor.{parquet_ingestor._MODULE_OF[name]}"]
            assert value is not None
    assert set(parquet_ingestor._MODULE_OF) == set(parquet_ingestor.__all__) - {"__version__"}
    with pytest.raises(AttributeError):
        _ = parquet_ingestor.NoSuchName  # type: ignore[attr-defined]


class _GatedSink(MemorySink):
    """Commits wait for ``gate``: the test decides when the last write ends."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.committing = threading.Event()

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> Any:
        writer = super().open(key, content_type, metadata)
        commit = writer.commit

        def gated() -> None:
            self.committing.set()
            self.gate.wait(60)
            commit()

        writer.commit = gated  # type: ignore[method-assign]
        return writer


class _WatchedEvent(threading.Event):
    """The runner's settle event, telling the test when the receive loop waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def test_run_ends_when_its_last_write_does_not_at_a_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the source exhausted and a batch still being written, the receive loop waits for
    that flush: its end wakes the loop (an hour-long fallback poll would hang the run)."""
    monkeypatch.setattr(runner, "SETTLE_CHECK", 3600.0)
    source = MemorySource([b'{"n": 1}', b'{"n": 2}'])
    sink = _GatedSink()
    pipeline = Pipeline(source, sink, JsonlEncoder(), settings=PipelineSettings(
        batch=BatchLimits(max_bytes=1 << 20, max_age=60.0), workers=1))
    settled = pipeline._settled = _WatchedEvent()
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    try:
        assert sink.committing.wait(60), "the batch was never written"
        assert settled.waiting.wait(60), "the receive loop never waited for the last write"
    finally:
        sink.gate.set()
    thread.join(60)
    assert not thread.is_alive(), "the run waited for its poll interval after the last write"
    assert pipeline.stopped_reason == "drained"
    assert [m.id for m in source.acked] == ["m0", "m1"]
    assert len(sink.commits) == 1


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_libc_is_found_without_running_ldconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ctypes.util.find_library`` runs ``ldconfig -p`` in a child process: on glibc the
    soname is enough (every run and every MemoryLimit looked it up)."""

    def no_search(name: str) -> str:
        raise AssertionError("find_library was called")

    monkeypatch.setattr(ctypes.util, "find_library", no_search)
    assert memory._libc_function("mallopt") is not None
    assert memory.MemoryLimit(None)._trim is not None


def test_only_the_console_script_skips_the_last_collection() -> None:
    """``ingest`` (cli.command) freezes the collector as its process exits; ``main()`` called
    in a process that goes on leaves it as it was."""
    before = gc.get_freeze_count()
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert gc.get_freeze_count() == before
    probe = ("import atexit, gc, sys\n"
             "atexit.register(lambda: print('FROZEN', gc.get_freeze_count() > 0))\n"
             "from parquet_ingestor.cli import command\n"
             "sys.argv = ['ingest', '--version']\n"
             "command()\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "FROZEN True" in proc.stdout, proc.stdout
