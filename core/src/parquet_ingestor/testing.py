"""Test kit for plugin authors: a pytest plugin, in-memory parts, and conformance suites.

Opt in from your ``conftest.py``::

    pytest_plugins = ["parquet_ingestor.testing"]

Then subclass a contract and say how to make your component; every test of the contract runs
against it::

    from parquet_ingestor.testing import SourceContract

    class TestMySource(SourceContract):
        def make_source(self, bodies):
            publish(bodies)                     # put the messages where your source reads them
            return lambda: MySource(url=...)    # opens a consumer; may be called more than once

Fixtures: ``plugin_registry`` (an isolated registry holding only the built-ins and the plugins
you pass), ``memory_source``, ``memory_sink`` and ``run_pipeline`` (drive a whole pipeline in
memory and get an :class:`Outcome` back).
"""

from __future__ import annotations

import gzip
import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from .batcher import BatchLimits
from .interfaces import BaseSink, BaseSource, Encoder, Sink, Source, Transformer
from .message import Message
from .pipeline import FileResult, Pipeline, PipelineSettings
from .plugins import Registry, build_registry
from .records import JsonLines, RecordList

# ------------------------------------------------------------------------ in-memory parts


class MemorySource(BaseSource):
    """A finite source over a list of bodies that records every ack and nack.

    Nacked messages are delivered again up to ``redeliver`` times (0: never), so a run that
    rejects messages without an error sink still ends.
    """

    def __init__(self, bodies: Iterable[bytes | str] = (), redeliver: int = 0) -> None:
        self.messages = [Message(f"m{i}", b if isinstance(b, bytes) else b.encode(), {"n": i})
                         for i, b in enumerate(bodies)]
        self._pending = list(self.messages)
        self._lock = threading.Lock()
        self.redeliver = redeliver
        self.acked: list[Message] = []
        self.nacked: list[Message] = []
        self.events: list[tuple[str, str]] = []  # ("ack"|"nack", message id), in order
        self.deliveries: dict[str, int] = {}
        self.closed = 0

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        with self._lock:
            out, self._pending = self._pending[:max_messages], self._pending[max_messages:]
            for m in out:
                self.deliveries[m.id] = self.deliveries.get(m.id, 0) + 1
        return out

    def ack(self, messages: Sequence[Message]) -> None:
        with self._lock:
            self.acked.extend(messages)
            self.events.extend(("ack", m.id) for m in messages)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        with self._lock:
            self.nacked.extend(messages)
            self.events.extend(("nack", m.id) for m in messages)
            self._pending.extend(m for m in messages if self.deliveries[m.id] <= self.redeliver)

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return not self._pending

    def close(self) -> None:
        self.closed += 1


class RecordingSource:
    """Wraps any source and records what the pipeline acked and nacked (``run_pipeline`` uses it)."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.acked: list[Message] = []
        self.nacked: list[Message] = []
        self._lock = threading.Lock()

    def start(self, context: Any) -> None:
        start = getattr(self.inner, "start", None)
        if callable(start):
            start(context)

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        return self.inner.receive(max_messages, timeout)

    def ack(self, messages: Sequence[Message]) -> None:
        self.inner.ack(messages)  # record only what the source accepted
        with self._lock:
            self.acked.extend(messages)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        with self._lock:
            self.nacked.extend(messages)
        self.inner.nack(messages, delay)

    @property
    def exhausted(self) -> bool:
        return self.inner.exhausted

    def close(self) -> None:
        self.inner.close()


class MemorySink(BaseSink):
    """Keeps committed objects in a dict; can fail on purpose.

    ``fail_commits=n`` makes the next n commits raise; ``fail_after_bytes=n`` makes a write
    raise once n bytes went into one object. ``objects`` only ever holds committed data.
    """

    def __init__(self, fail_commits: int = 0, fail_after_bytes: int | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.content_types: dict[str, str] = {}
        self.aborted: list[str] = []
        self.commits: list[str] = []  # keys in commit order
        self.fail_commits = fail_commits
        self.fail_after_bytes = fail_after_bytes
        self._lock = threading.Lock()

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> _MemoryWriter:
        return _MemoryWriter(self, key, content_type, dict(metadata))

    def url(self, key: str) -> str:
        return f"memory://{key}"


class _MemoryWriter:
    def __init__(self, sink: MemorySink, key: str, content_type: str, meta: dict[str, str]) -> None:
        self.sink, self.key, self.content_type, self.meta = sink, key, content_type, meta
        self.buffer = io.BytesIO()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        limit = self.sink.fail_after_bytes
        n = self.buffer.write(data)
        if limit is not None and self.buffer.tell() > limit:
            raise OSError(f"injected write failure after {limit} bytes")
        return n

    def commit(self) -> None:
        with self.sink._lock:
            if self.sink.fail_commits > 0:
                self.sink.fail_commits -= 1
                raise OSError("injected commit failure")
            self.sink.objects[self.key] = self.buffer.getvalue()
            self.sink.metadata[self.key] = self.meta
            self.sink.content_types[self.key] = self.content_type
            self.sink.commits.append(self.key)

    def abort(self) -> None:
        with self.sink._lock:
            self.sink.aborted.append(self.key)


# ------------------------------------------------------------------------ run_pipeline


@dataclass
class Outcome:
    """What a run did: files, rows read back, and how every message was settled."""

    pipeline: Pipeline
    source: MemorySource | RecordingSource
    sink: Sink
    files: list[FileResult]
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def acked(self) -> list[Message]:
        return list(self.source.acked)

    @property
    def nacked(self) -> list[Message]:
        return list(self.source.nacked)

    @property
    def rows_written(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rejected(self) -> int:
        return int(self.pipeline.metrics.counts["rejected"])


def read_rows(data: bytes, key: str) -> list[dict[str, Any]]:
    """Read a written object back: Parquet with pyarrow, JSON lines (gzip too) with json."""
    if key.endswith(".parquet"):
        import pyarrow.parquet as pq

        return list(pq.read_table(io.BytesIO(data)).to_pylist())
    if key.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines() if line.strip()]


class _FileCollector:
    """Observer hooks that keep every file written (``Pipeline.files`` keeps only recent ones),
    then pass each hook on to the caller's hooks."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.files: list[FileResult] = []
        self._lock = threading.Lock()

    def ingest_batch_flushed(self, **kwargs: Any) -> None:
        with self._lock:
            self.files.extend(kwargs["result"].files)
        self._forward("ingest_batch_flushed", kwargs)

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("ingest_"):
            raise AttributeError(name)
        return lambda **kwargs: self._forward(name, kwargs)

    def _forward(self, name: str, kwargs: dict[str, Any]) -> None:
        caller = getattr(self.inner, name, None) if self.inner is not None else None
        if caller is not None:
            from .plugins import call_each

            call_each(caller, **kwargs)


def run_pipeline(
    source: Source | Iterable[bytes | str],
    *,
    sink: Sink | None = None,
    encoder: Encoder | None = None,
    transformer: Transformer | None = None,
    error_sink: Sink | None = None,
    settings: PipelineSettings | None = None,
    hooks: Any = None,
    timeout: float = 60.0,
) -> Outcome:
    """Run a pipeline to completion in memory (default: json -> jsonl into a MemorySink).

    ``source`` may be a list of bodies. The run stops when a finite source is drained, or after
    ``timeout`` seconds (then it is stopped cleanly and the test should fail on its counts).
    """
    if not isinstance(source, Source):
        source = MemorySource(source)
    elif not isinstance(source, MemorySource):
        source = RecordingSource(source)  # so Outcome.acked/nacked work for any source
    sink = sink if sink is not None else MemorySink()
    if encoder is None:
        from .builtins.jsonl_encoder import JsonlEncoder

        encoder = JsonlEncoder()
    settings = settings or PipelineSettings(batch=BatchLimits(max_bytes=1 << 20, max_age=1.0),
                                            workers=2, exit_when_idle=2.0)
    collected = _FileCollector(hooks)
    pipeline = Pipeline(source, sink, encoder, transformer, settings,
                        error_sink=error_sink, hooks=collected)
    timer = threading.Timer(timeout, pipeline.stop)
    timer.daemon = True
    timer.start()
    try:
        pipeline.run()
    finally:
        timer.cancel()
    # files that outlived their batch commit outside a flush: take them from the recent ones
    seen = {id(f) for f in collected.files}
    collected.files.extend(f for f in pipeline.files if id(f) not in seen)
    outcome = Outcome(pipeline, source, sink, collected.files)
    if isinstance(sink, MemorySink):
        for f in collected.files:
            outcome.rows.extend(read_rows(sink.objects[f.key], f.key))
    if isinstance(error_sink, MemorySink):
        for key, data in error_sink.objects.items():
            outcome.errors.extend(read_rows(data, key))
    return outcome


# ------------------------------------------------------------------------ fixtures


@pytest.fixture
def plugin_registry() -> Callable[..., Registry]:
    """Build an isolated registry: the built-ins plus the plugin objects you pass.

    ``registry = plugin_registry(("mine", my_plugin_module))`` - installed entry points are
    not loaded, so other installed plugins cannot interfere.
    """
    from . import builtins

    def build(*plugins: tuple[str, object]) -> Registry:
        return build_registry([("builtins", builtins), *plugins], entry_points_enabled=False)

    return build


@pytest.fixture
def memory_source() -> type[MemorySource]:
    return MemorySource


@pytest.fixture
def memory_sink() -> type[MemorySink]:
    return MemorySink


@pytest.fixture(name="run_pipeline")
def run_pipeline_fixture() -> Callable[..., Outcome]:
    return run_pipeline


# ------------------------------------------------------------------------ contracts


def receive_all(source: Source, count: int, timeout: float = 20.0) -> list[Message]:
    """Receive until ``count`` messages arrived or ``timeout`` passed."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(source.receive(count - len(got), 1.0))
        if not got and getattr(source, "exhausted", False):
            break
    return got


SAMPLE_BODIES = [json.dumps({"id": i, "text": f"event {i} ✓", "n": i * 7}).encode()
                 for i in range(25)]


class SourceContract:
    """Conformance suite for a source. Implement :meth:`make_source`.

    A source whose new consumers start over (a file) sets ``reopen_resumes = False``; one that
    cannot deliver a nacked message again sets ``redelivers = False``. Those tests then only
    check that nothing breaks.
    """

    redelivers = True
    reopen_resumes = True

    def make_source(self, bodies: list[bytes]) -> Callable[[], Source]:
        """Put ``bodies`` where the source reads; return a function that opens a consumer."""
        raise NotImplementedError

    def test_delivers_every_message(self) -> None:
        source = self.make_source(SAMPLE_BODIES)()
        try:
            got = receive_all(source, len(SAMPLE_BODIES))
            assert sorted(m.body for m in got) == sorted(SAMPLE_BODIES)
            assert all(m.id and m.size == len(m.body) for m in got)
            assert len({m.id for m in got}) == len(got), "message ids must be unique"
            source.ack(got)
        finally:
            source.close()

    def test_ack_then_close_releases_only_the_rest(self) -> None:
        opener = self.make_source(SAMPLE_BODIES)
        source = opener()
        got = receive_all(source, len(SAMPLE_BODIES))
        half = len(got) // 2
        source.ack(got[:half])
        source.close()  # must release the un-acked ones
        if not self.reopen_resumes:
            return
        again = opener()
        try:
            back = receive_all(again, len(got) - half)
            assert sorted(m.body for m in back) == sorted(m.body for m in got[half:])
            assert not receive_all(again, 1, timeout=2.0), "acked messages came back"
            again.ack(back)
        finally:
            again.close()

    def test_nack_returns_messages(self) -> None:
        source = self.make_source(SAMPLE_BODIES[:5])()
        try:
            got = receive_all(source, 5)
            source.nack(got, 0)
            if self.redelivers:
                back = receive_all(source, 5)
                assert sorted(m.body for m in back) == sorted(m.body for m in got)
                source.ack(back)
        finally:
            source.close()

    def test_close_is_idempotent(self) -> None:
        source = self.make_source(SAMPLE_BODIES[:1])()
        source.close()
        source.close()


class SinkContract:
    """Conformance suite for a sink. Implement :meth:`make_sink` and :meth:`read_object`."""

    def make_sink(self) -> Sink:
        raise NotImplementedError

    def read_object(self, sink: Sink, key: str) -> bytes | None:
        """The committed bytes at ``key``, or None when nothing is visible there."""
        raise NotImplementedError

    def test_commit_makes_bytes_visible(self) -> None:
        sink = self.make_sink()
        data = bytes(range(256)) * 1000
        writer = sink.open("contract/a/one.bin", "application/octet-stream", {"k": "v"})
        for i in range(0, len(data), 65536):
            writer.write(data[i:i + 65536])
        assert self.read_object(sink, "contract/a/one.bin") is None, "visible before commit"
        writer.commit()
        assert self.read_object(sink, "contract/a/one.bin") == data
        assert "contract/a/one.bin" in sink.url("contract/a/one.bin")
        sink.close()

    def test_abort_leaves_nothing(self) -> None:
        sink = self.make_sink()
        writer = sink.open("contract/b/aborted.bin", "application/octet-stream", {})
        writer.write(b"x" * 100_000)
        writer.abort()
        writer.abort()  # twice is safe
        assert self.read_object(sink, "contract/b/aborted.bin") is None
        sink.close()

    def test_concurrent_writers(self) -> None:
        sink = self.make_sink()

        def put(i: int) -> None:
            w = sink.open(f"contract/c/{i}.bin", "application/octet-stream", {})
            w.write(str(i).encode() * 1000)
            w.commit()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(16)))
        for i in range(16):
            assert self.read_object(sink, f"contract/c/{i}.bin") == str(i).encode() * 1000
        sink.close()

    def test_close_is_idempotent(self) -> None:
        sink = self.make_sink()
        sink.close()
        sink.close()


class EncoderContract:
    """Conformance suite for an encoder. Implement :meth:`make_encoder` and :meth:`read_back`."""

    def make_encoder(self) -> Encoder:
        raise NotImplementedError

    def read_back(self, data: bytes) -> list[dict[str, Any]]:
        raise NotImplementedError

    rows = [{"id": i, "name": f"n{i} é", "score": i / 4, "ok": i % 2 == 0} for i in range(50)]

    def _encode(self, encoder: Encoder, records: Any) -> tuple[bytes, list[tuple[int, str]]]:
        decoded = encoder.decode(records)
        out = io.BytesIO()
        writer = encoder.open(out, decoded.frame)  # type: ignore[arg-type]
        writer.write(decoded.frame)
        writer.close({"ingest.records": str(len(decoded.frame))})
        return out.getvalue(), decoded.rejected

    def test_round_trips_records(self) -> None:
        encoder = self.make_encoder()
        data, rejected = self._encode(encoder, RecordList(list(self.rows), list(range(50))))
        assert not rejected
        assert self.read_back(data) == self.rows
        assert encoder.extension and encoder.content_type

    def test_round_trips_json_lines_and_rejects_bad_ones(self) -> None:
        encoder = self.make_encoder()
        lines = [json.dumps(r).encode() for r in self.rows[:10]]
        lines.insert(3, b'{"id": broken')
        records = JsonLines(lines, list(range(len(lines))))
        data, rejected = self._encode(encoder, records)
        assert [src for src, _ in rejected] == [3]
        assert self.read_back(data) == self.rows[:10]

    def test_frame_sources_follow_rows(self) -> None:
        encoder = self.make_encoder()
        decoded = encoder.decode(RecordList(list(self.rows[:6]), [0, 0, 1, 2, 2, 2]))
        assert list(decoded.frame.sources) == [0, 0, 1, 2, 2, 2]
        assert list(decoded.frame.take([5, 0]).sources) == [2, 0]


class TransformerContract:
    """Conformance suite for a transformer: implement the three ``make``/``*_messages`` methods."""

    def make_transformer(self) -> Transformer:
        raise NotImplementedError

    def good_messages(self) -> list[Message]:
        raise NotImplementedError

    def bad_messages(self) -> list[Message]:
        raise NotImplementedError

    def _rows(self, records: Any) -> int:
        return len(records)

    def test_good_messages_become_records(self) -> None:
        good = self.good_messages()
        result = self.make_transformer().transform(good)
        assert not result.rejected
        assert self._rows(result.records) >= len(good)
        assert set(result.records.sources) <= set(range(len(good)))

    def test_bad_messages_are_rejected_with_a_reason(self) -> None:
        good, bad = self.good_messages(), self.bad_messages()
        mixed = [m for pair in zip(good, bad, strict=False) for m in pair] + good[len(bad):]
        result = self.make_transformer().transform(mixed)
        rejected = {id(r.message) for r in result.rejected}
        decoded_rejects: set[int] = set()
        if isinstance(result.records, JsonLines):  # decoding is part of the contract too
            _, late = result.records.decode()
            decoded_rejects = {id(mixed[i]) for i, _ in late}
        assert rejected | decoded_rejects == {id(m) for m in bad}
        assert all(r.reason for r in result.rejected)
