"""Test kit for plugin authors: a pytest plugin, in-memory parts, and conformance suites.

Opt in from your ``conftest.py``::

    pytest_plugins = ["parquet_ingestor.testing"]

Then subclass a contract and say how to make your component; every test of the contract runs
against it::

    from parquet_ingestor.testing import SourceContract

    class TestMySource(SourceContract):
        lease_length = 6.0                      # what the suite measures against (see below)

        def make_source(self, bodies):
            publish(bodies)                     # put the messages where your source reads them
            return lambda: MySource(url=..., lease=self.lease_length)  # a consumer; called again

Fixtures: ``plugin_registry`` (an isolated registry holding only the built-ins and the plugins
you pass), ``memory_source``, ``memory_sink`` and ``run_pipeline`` (drive a whole pipeline in
memory and get an :class:`Outcome` back).
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from .batcher import BatchLimits
from .interfaces import (
    BaseSink,
    BaseSource,
    Encoder,
    Frame,
    RunContext,
    Sink,
    Source,
    Transformer,
)
from .message import Message
from .pipeline import FileResult, Pipeline, PipelineSettings
from .plugins import Registry, build_registry
from .records import JsonLines, RecordList
from .redelivery import HeldMessages

# ------------------------------------------------------------------------ in-memory parts


def wait_for(condition: Callable[[], object], timeout: float = 60.0,
             what: str | None = None) -> bool:
    """Poll ``condition`` every 20 ms until it holds: tests wait on conditions, never on
    sleeps, with a ``timeout`` sized for a loaded machine. Returns whether it held; with
    ``what``, a timeout raises ``AssertionError("timed out waiting for <what>")`` instead."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            if condition():
                return True
            if what is not None:
                raise AssertionError(f"timed out waiting for {what}")
            return False
        time.sleep(0.02)
    return True


_PORT_BLOCK = 400  # ports per pytest-xdist worker
_PORT_BASE = 20000  # below Linux's default ephemeral range (32768-60999)
_next_port = itertools.count()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on, for a server that a test starts (often in another process).

    ``bind(0)`` then close leaves a window in which another test's ``bind(0)`` gets the same
    port. These ports come from below the kernel's ephemeral range, where ``bind(0)`` never
    lands, in a block of their own for each pytest-xdist worker (``PYTEST_XDIST_WORKER``), so
    two tests running at once are never handed the same one. Falls back to ``bind(0)``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    start = _PORT_BASE + (int(worker) if worker.isdigit() else 0) * _PORT_BLOCK
    if start + _PORT_BLOCK <= _ephemeral_low():
        for _ in range(_PORT_BLOCK):
            port = start + next(_next_port) % _PORT_BLOCK
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # the Linux default; elsewhere the first probe's bind tells


class MemorySource(BaseSource):
    """A finite source over a list of bodies that records every ack and nack.

    Nacked messages are delivered again (after the nack's delay) up to ``redeliver`` times
    (0: never), so a run that rejects messages without an error sink still ends. Its
    bookkeeping is :class:`~parquet_ingestor.redelivery.HeldMessages`, as in real sources.
    """

    def __init__(self, bodies: Iterable[bytes | str] = (), redeliver: int = 0) -> None:
        self.messages = [Message(f"m{i}", b if isinstance(b, bytes) else b.encode(), {"n": i})
                         for i, b in enumerate(bodies)]
        self._pending = deque(self.messages)
        self._held = HeldMessages()
        self._lock = threading.Lock()
        self.redeliver = redeliver
        self.acked: list[Message] = []
        self.nacked: list[Message] = []
        self.events: list[tuple[str, str]] = []  # ("ack"|"nack", message id), in order
        self.deliveries: dict[str, int] = {}
        self.closed = 0

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = self._held.due(max_messages)
        with self._lock:
            while self._pending and len(out) < max_messages:
                message = self._pending.popleft()
                self._held.lease([message])
                out.append(message)
            for m in out:
                self.deliveries[m.id] = self.deliveries.get(m.id, 0) + 1
        return out

    def ack(self, messages: Sequence[Message]) -> None:
        self._held.settle(messages)
        with self._lock:
            self.acked.extend(messages)
            self.events.extend(("ack", m.id) for m in messages)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        with self._lock:
            self.nacked.extend(messages)
            self.events.extend(("nack", m.id) for m in messages)
            again = [m for m in messages if self.deliveries[m.id] <= self.redeliver]
        self._held.forget(m for m in messages if self.deliveries[m.id] > self.redeliver)
        self._held.nack(again, delay)

    @property
    def exhausted(self) -> bool:
        with self._lock:
            return not self._pending and self._held.next_due() is None

    def close(self) -> None:
        released = self._held.release()
        with self._lock:
            self._pending.extendleft(reversed(released))
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
    """Receive until ``count`` messages arrived or ``timeout`` passed (each call asks only for
    what is still missing and waits at most what is left of ``timeout``)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got.extend(source.receive(count - len(got), min(1.0, left)))
        if not got and getattr(source, "exhausted", False):
            break
    return got


def start_component(component: Any, workers: int = 2) -> Any:
    """Call ``component.start(context)`` when it has one, as the pipeline does; returns it."""
    start = getattr(component, "start", None)
    if callable(start):
        from .metrics import Metrics

        start(RunContext(workers=workers, metrics=Metrics(), batch=BatchLimits()))
    return component


SAMPLE_BODIES = [json.dumps({"id": i, "text": f"event {i} ✓", "n": i * 7}).encode()
                 for i in range(25)]


class SourceContract:
    """Conformance suite for a source. Implement :meth:`make_source`; declare what the source
    is with the class attributes below, so the suite can measure it.

    * ``lease_length``: seconds after which a message handed out and neither settled nor
      renewed is delivered again by the system (SQS visibility timeout, Redis ``claim_idle``);
      configure your source with it in :meth:`make_source`. None: the source has no leases.
    * ``hold_budget``: how long the suite holds messages unsettled to check that leases are
      renewed (default: 1.5 leases; at least 1.25 leases).
    * ``release_within``: close and ``nack(delay=0)`` must give messages back within this many
      seconds. Keep it at most a third of ``lease_length``, so a lease that merely lapses
      cannot pass for a release.
    * ``nack_delay``: the delay the suite nacks with; the messages must not come back sooner.
    * ``receive_timeout``: longest the suite waits for messages it has just published.
    * ``counts_deliveries``: the source sets :attr:`Message.deliveries` from its system.
    * ``reopen_resumes = False``: a new consumer starts over (a file), so nothing left by
      another consumer can be checked. ``redelivers = False``: nack cannot give anything back.
      ``honours_nack_delay = False``: the source redelivers at once whatever the delay.
      Tests that cannot apply are *skipped* with the reason, never passed silently.

    Every consumer the suite opens is started with ``start(context)`` when it has one.
    """

    redelivers = True
    reopen_resumes = True
    honours_nack_delay = True
    counts_deliveries = False
    lease_length: float | None = None
    hold_budget: float | None = None
    release_within: float = 2.0
    nack_delay: float = 2.0
    receive_timeout: float = 20.0

    def make_source(self, bodies: list[bytes]) -> Callable[[], Source]:
        """Put ``bodies`` where the source reads; return a function that opens a consumer."""
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers

    def open_source(self, opener: Callable[[], Source]) -> Source:
        """A new consumer, started as the pipeline starts it."""
        return start_component(opener())  # type: ignore[no-any-return]

    def _declared(self) -> None:
        lease = self.lease_length
        if lease is not None:
            assert self.release_within * 3 <= lease, (
                f"release_within ({self.release_within}s) must be at most a third of "
                f"lease_length ({lease}s): otherwise a lapsing lease passes for a release")
            assert self._hold() >= 1.25 * lease, (
                f"hold_budget ({self._hold()}s) must be at least 1.25 x lease_length ({lease}s)")

    def _hold(self) -> float:
        lease = self.lease_length or 0.0
        return self.hold_budget if self.hold_budget is not None else 1.5 * lease

    def _past_lease(self) -> float:
        """How long to watch for redeliveries that must not happen: past one lease."""
        lease = self.lease_length
        return 0.5 if lease is None else lease * 1.2 + 0.3

    # ---------------------------------------------------------------- tests

    def test_delivers_every_message_once(self) -> None:
        self._declared()
        source = self.open_source(self.make_source(SAMPLE_BODIES))
        try:
            first: list[Message] = []
            deadline = time.monotonic() + 20
            while not first and time.monotonic() < deadline:
                first = list(source.receive(3, 1.0))
                assert len(first) <= 3, f"receive(3) returned {len(first)} messages"
            got = first + receive_all(source, len(SAMPLE_BODIES) - len(first),
                                      self.receive_timeout)
            assert sorted(m.body for m in got) == sorted(SAMPLE_BODIES), \
                "bodies delivered differ from those published (lost, altered or duplicated)"
            assert all(m.id and m.size == len(m.body) for m in got)
            assert len({m.id for m in got}) == len(got), "message ids must be unique"
            if self.counts_deliveries:
                assert all(m.deliveries == 1 for m in got), \
                    f"first deliveries must count 1: {[m.deliveries for m in got]}"
            extra = receive_all(source, 1, timeout=0.5)
            assert not extra, f"delivered again while held: {extra}"
            source.ack(got)
        finally:
            source.close()

    def test_acked_messages_stay_gone_past_the_lease(self) -> None:
        """Acks reach the system: nothing comes back after a lease, to this or a new consumer."""
        self._declared()
        opener = self.make_source(SAMPLE_BODIES)
        source = self.open_source(opener)
        try:
            got = receive_all(source, len(SAMPLE_BODIES), self.receive_timeout)
            assert len(got) == len(SAMPLE_BODIES)
            source.ack(got[:10])
            source.ack(got[10:])
            back = receive_all(source, 1, timeout=self._past_lease())
            assert not back, f"acked messages came back after the lease: {back}"
            if self.reopen_resumes:
                other = self.open_source(opener)
                try:
                    back = receive_all(other, 1, timeout=self.release_within)
                    assert not back, f"acked messages reached a new consumer: {back}"
                finally:
                    other.close()
        finally:
            source.close()

    def test_close_gives_messages_back_within_the_bound(self) -> None:
        """What a closed consumer held reaches a new consumer within ``release_within``."""
        self._declared()
        opener = self.make_source(SAMPLE_BODIES)
        source = self.open_source(opener)
        got = receive_all(source, len(SAMPLE_BODIES), self.receive_timeout)
        assert len(got) == len(SAMPLE_BODIES)
        half = len(got) // 2
        source.ack(got[:half])
        if not self.reopen_resumes:
            source.close()
            pytest.skip("reopen_resumes = False: a new consumer starts over")
        again = self.open_source(opener)  # already running when the first one closes
        try:
            source.close()  # must release the un-acked ones
            back = receive_all(again, len(got) - half, timeout=self.release_within)
            assert sorted(m.body for m in back) == sorted(m.body for m in got[half:]), (
                f"close gave back {len(back)} of {len(got) - half} messages within "
                f"{self.release_within}s (lease_length {self.lease_length}s)")
            assert not receive_all(again, 1, timeout=0.3), "acked messages came back"
            again.ack(back)
        finally:
            again.close()

    def test_nack_now_gives_messages_back_within_the_bound(self) -> None:
        self._declared()
        source = self.open_source(self.make_source(SAMPLE_BODIES[:5]))
        try:
            got = receive_all(source, 5, self.receive_timeout)
            assert len(got) == 5
            source.nack(got, 0)
            if not self.redelivers:
                pytest.skip("redelivers = False")
            back = receive_all(source, 5, timeout=self.release_within)
            assert sorted(m.body for m in back) == sorted(m.body for m in got), (
                f"nack(delay=0) gave back {len(back)} of 5 messages within "
                f"{self.release_within}s (lease_length {self.lease_length}s)")
            if self.counts_deliveries:
                assert all((m.deliveries or 0) >= 2 for m in back), \
                    f"a redelivered message must count 2+: {[m.deliveries for m in back]}"
            source.ack(back)
        finally:
            source.close()

    def test_nack_delay_is_honoured(self) -> None:
        self._declared()
        source = self.open_source(self.make_source(SAMPLE_BODIES[:3]))
        try:
            got = receive_all(source, 3, self.receive_timeout)
            assert len(got) == 3
            nacked_at = time.monotonic()
            source.nack(got, self.nack_delay)
            if not self.redelivers:
                pytest.skip("redelivers = False")
            if not self.honours_nack_delay:
                pytest.skip("honours_nack_delay = False")
            early = receive_all(source, 3, timeout=self.nack_delay * 0.75)
            early_at = time.monotonic() - nacked_at
            assert not early, (f"nacked with delay {self.nack_delay}s, back after "
                               f"{early_at:.2f}s")
            left = nacked_at + self.nack_delay + self.release_within - time.monotonic()
            back = receive_all(source, 3, timeout=max(left, 0.1))
            assert sorted(m.body for m in back) == sorted(m.body for m in got), (
                f"{len(back)} of 3 back within {self.nack_delay}s + {self.release_within}s")
            source.ack(back)
        finally:
            source.close()

    def test_leases_are_renewed_while_held(self) -> None:
        """Held past its lease length, a message reaches no other consumer (nor this one)."""
        self._declared()
        if self.lease_length is None:
            pytest.skip("lease_length = None: the source has no leases")
        if not self.reopen_resumes:
            pytest.skip("reopen_resumes = False: no second consumer to check with")
        opener = self.make_source(SAMPLE_BODIES[:6])
        source = self.open_source(opener)
        try:
            got = receive_all(source, 6, self.receive_timeout)
            assert len(got) == 6
            again = receive_all(source, 1, timeout=self._hold())
            assert not again, f"held {self._hold()}s, delivered again: {again}"
            other = self.open_source(opener)
            try:
                stolen = receive_all(other, 1, timeout=self.release_within)
                assert not stolen, (f"held {self._hold()}s (lease {self.lease_length}s), a "
                                    f"new consumer got {stolen}: leases are not renewed")
            finally:
                other.close()
            source.ack(got)
        finally:
            source.close()

    def test_close_is_idempotent(self) -> None:
        source = self.open_source(self.make_source(SAMPLE_BODIES[:1]))
        source.close()
        source.close()


@dataclass
class StoredObject:
    """An object read back from a sink's system, with what the sink stored beside the bytes."""

    data: bytes
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class SinkContract:
    """Conformance suite for a sink. Implement :meth:`make_sink` and :meth:`read_stored`.

    * ``part_size``: the size at which the sink splits a file (S3 multipart part size, a block
      size): files of 2.5 parts are written, so the multi-part code runs.
    * ``stores_metadata = False``: the system keeps bytes only (a local directory); then the
      content type and metadata checks are skipped with that reason.
    """

    part_size: int = 1 << 20
    stores_metadata = True

    def make_sink(self) -> Sink:
        raise NotImplementedError

    def read_stored(self, sink: Sink, key: str) -> StoredObject | None:
        """Read ``key`` back from the system without the sink: bytes, content type and
        metadata; None when nothing is visible there."""
        raise NotImplementedError(
            "declare how to read an object back with its content type and metadata: "
            "implement read_stored(sink, key) -> StoredObject | None")

    def read_object(self, sink: Sink, key: str) -> bytes | None:
        """The committed bytes at ``key``, or None when nothing is visible there."""
        stored = self.read_stored(sink, key)
        return None if stored is None else stored.data

    def open_sink(self) -> Sink:
        return start_component(self.make_sink())  # type: ignore[no-any-return]

    def _write(self, sink: Sink, key: str, data: bytes, content_type: str = "application/x-test",
               metadata: Mapping[str, str] | None = None, chunk: int = 65_537) -> Any:
        writer = sink.open(key, content_type, dict(metadata or {}))
        for i in range(0, len(data), chunk):
            writer.write(data[i:i + chunk])
        return writer

    def test_commit_makes_bytes_visible(self) -> None:
        sink = self.open_sink()
        data = bytes(range(256)) * 1000
        writer = self._write(sink, "contract/a/one.bin", data)
        assert self.read_object(sink, "contract/a/one.bin") is None, "visible before commit"
        writer.commit()
        assert self.read_object(sink, "contract/a/one.bin") == data
        assert "contract/a/one.bin" in sink.url("contract/a/one.bin")
        sink.close()

    def test_content_type_and_metadata_are_stored(self) -> None:
        sink = self.open_sink()
        if not self.stores_metadata:
            sink.close()
            pytest.skip("stores_metadata = False")
        meta = {"ingest-records": "42", "contract-check": "yes"}
        writer = self._write(sink, "contract/m/meta.parquet", b"PAR1 contract PAR1",
                             "application/vnd.apache.parquet", meta)
        writer.commit()
        stored = self.read_stored(sink, "contract/m/meta.parquet")
        assert stored is not None and stored.data == b"PAR1 contract PAR1"
        assert stored.content_type == "application/vnd.apache.parquet", \
            f"content type stored: {stored.content_type!r}"
        missing = {k: v for k, v in meta.items() if stored.metadata.get(k) != v}
        assert not missing, f"metadata not stored: {missing} (read back {dict(stored.metadata)})"
        sink.close()

    def test_multi_part_file_round_trips(self) -> None:
        """2.5 parts of bytes that never repeat: a dropped, repeated or reordered part shows."""
        import random

        size = int(self.part_size * 2.5) + 1234
        data = random.Random(size).randbytes(size)
        sink = self.open_sink()
        writer = self._write(sink, "contract/big/file.bin", data, chunk=1 << 20)
        assert self.read_object(sink, "contract/big/file.bin") is None, "visible before commit"
        writer.commit()
        back = self.read_object(sink, "contract/big/file.bin")
        assert back is not None, "committed file is not visible"
        assert len(back) == len(data), f"{len(back)} bytes stored of {len(data)}"
        assert back == data, "stored bytes differ (a part dropped, repeated or reordered)"
        sink.close()

    def test_abort_leaves_nothing(self) -> None:
        sink = self.open_sink()
        writer = self._write(sink, "contract/b/aborted.bin", b"x" * 100_000)
        writer.abort()
        writer.abort()  # twice is safe
        assert self.read_object(sink, "contract/b/aborted.bin") is None
        big = self._write(sink, "contract/b/big.bin", b"y" * int(self.part_size * 1.5),
                          chunk=1 << 20)
        big.abort()
        assert self.read_object(sink, "contract/b/big.bin") is None, "aborted multi-part file"
        sink.close()

    def test_key_can_be_written_again_after_an_abort(self) -> None:
        sink = self.open_sink()
        first = self._write(sink, "contract/r/again.bin", b"aborted " * 1000)
        first.abort()
        second = self._write(sink, "contract/r/again.bin", b"committed " * 1000)
        second.commit()
        assert self.read_object(sink, "contract/r/again.bin") == b"committed " * 1000
        sink.close()

    def test_concurrent_writers(self) -> None:
        """Writers of one sink share nothing: 16 open at once, written in turns, committed
        from 8 threads; then 16 written and committed wholly in parallel."""
        sink = self.open_sink()
        bodies = {i: str(i).encode() * 1000 for i in range(16)}
        writers = {i: sink.open(f"contract/c/{i}.bin", "application/x-test", {})
                   for i in bodies}
        for start in range(0, 4000, 997):
            for i, writer in writers.items():
                if bodies[i][start:start + 997]:
                    writer.write(bodies[i][start:start + 997])
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda w: w.commit(), writers.values()))

        def put(i: int) -> None:
            w = self._write(sink, f"contract/d/{i}.bin", str(i).encode() * 1000, chunk=997)
            w.commit()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(16)))
        for i, body in bodies.items():
            assert self.read_object(sink, f"contract/c/{i}.bin") == body, f"writer {i} (turns)"
            assert self.read_object(sink, f"contract/d/{i}.bin") == body, f"writer {i} (parallel)"
        sink.close()

    def test_close_is_idempotent(self) -> None:
        sink = self.open_sink()
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

    # -- partitions: the core's layout and rules read the encoder's frames (Frame.group) -----

    #: event times as text: Z, an offset, fractional seconds; null, missing and not a time
    timed: list[dict[str, Any]] = [
        {"t": "2024-05-01T23:59:59.999Z", "c": "US"},
        {"t": "2024-05-02T00:00:00Z", "c": "US"},
        {"t": "2024-05-02T00:30:00+02:00", "c": "DE"},  # 2024-05-01T22:30Z
        {"t": None, "c": "US"},
        {"c": "DE"},
        {"t": "garbage", "c": "US"},
        {"t": "2024-05-02T01:15:00Z", "c": None},
        {"t": "2024-05-02T01:45:00.5+00:00", "c": "US"},
    ]
    #: epoch seconds, milliseconds (above 1e11), before 1970, null, past the year 9999 (ms)
    epochs: list[dict[str, Any]] = [{"ts": 1714608000}, {"ts": 1714608000123}, {"ts": 1714525199}, {"ts": -86401},
              {"ts": None}, {"ts": 253402300800000}]
    received = datetime(2030, 1, 1, 5, 17, tzinfo=UTC)  # rows without a usable time go here

    def _frame(self, records: list[dict[str, Any]], time_field: str | None) -> Frame:
        """The encoder as ``ingest --partition-by event:FIELD`` starts it; one message a row."""
        encoder = self.make_encoder()
        start = getattr(encoder, "start", None)
        if callable(start):
            from .metrics import Metrics

            start(RunContext(workers=1, metrics=Metrics(), batch=BatchLimits(),
                             event_time_field=time_field))
        decoded = encoder.decode(RecordList([dict(r) for r in records],
                                            list(range(len(records)))))
        assert not decoded.rejected
        return decoded.frame

    def _partitions(
        self, records: list[dict[str, Any]], template: str, time_field: str | None = "t",
        **settings: Any,
    ) -> tuple[dict[tuple[str, tuple[Any, ...]], list[int]], dict[int, str]]:
        """``{(partition time, field values): rows}`` and the rows the layout rejected."""
        from .layout import Layout

        layout = Layout(PipelineSettings(
            partition_by=f"event:{time_field}" if time_field else "processing",
            key_template=template, **settings))
        rejected: dict[int, str] = {}
        parts = layout.partition(self._frame(records, time_field), rejected, self.received)
        found = {(p.when.isoformat(), tuple(p.values.values())): list(p.frame.sources)
                 for p in parts}
        assert len(found) == len(parts)
        return found, rejected

    def test_partitions_by_event_hour_and_field(self) -> None:
        parts, rejected = self._partitions(self.timed, "{field:c}/%Y/%m/%d/%H/{uuid}.{ext}")
        assert not rejected
        assert parts == {
            ("2024-05-01T23:00:00+00:00", ("US",)): [0],
            ("2024-05-02T00:00:00+00:00", ("US",)): [1],
            ("2024-05-01T22:00:00+00:00", ("DE",)): [2],
            ("2030-01-01T05:00:00+00:00", ("US",)): [3, 5],
            ("2030-01-01T05:00:00+00:00", ("DE",)): [4],
            ("2024-05-02T01:00:00+00:00", (None,)): [6],
            ("2024-05-02T01:00:00+00:00", ("US",)): [7],
        }

    def test_partitions_by_day_month_and_year(self) -> None:
        days, _ = self._partitions(self.timed, "%Y/%m/%d/{uuid}.{ext}")
        assert days == {("2024-05-01T00:00:00+00:00", ()): [0, 2],
                        ("2024-05-02T00:00:00+00:00", ()): [1, 6, 7],
                        ("2030-01-01T00:00:00+00:00", ()): [3, 4, 5]}
        months, _ = self._partitions(self.timed, "%Y/%m/{uuid}.{ext}")
        assert months == {("2024-05-01T00:00:00+00:00", ()): [0, 1, 2, 6, 7],
                          ("2030-01-01T00:00:00+00:00", ()): [3, 4, 5]}
        years, _ = self._partitions(self.timed[:3], "%Y/{uuid}.{ext}")
        assert years == {("2024-01-01T00:00:00+00:00", ()): [0, 1, 2]}

    def test_rows_without_a_usable_time_can_be_rejected(self) -> None:
        parts, rejected = self._partitions(self.timed, "%Y/%m/%d/%H/{uuid}.{ext}",
                                           on_missing_time="reject")
        assert sorted(rejected) == [3, 4, 5]
        assert all("no usable event time in field 't'" in r for r in rejected.values())
        assert sorted(row for rows in parts.values() for row in rows) == [0, 1, 2, 6, 7]

    def test_epoch_seconds_and_milliseconds(self) -> None:
        days, _ = self._partitions(self.epochs, "%Y/%m/%d/{uuid}.{ext}", time_field="ts")
        assert days == {("2024-05-02T00:00:00+00:00", ()): [0, 1],
                        ("2024-05-01T00:00:00+00:00", ()): [2],
                        ("1969-12-30T00:00:00+00:00", ()): [3],
                        ("2030-01-01T00:00:00+00:00", ()): [4, 5]}

    def test_event_time_span(self) -> None:
        from .eventtime import span

        frame = self._frame(self.timed, "t")
        assert span(frame, "t") == (datetime(2024, 5, 1, 22, 30, tzinfo=UTC),
                                    datetime(2024, 5, 2, 1, 45, 0, 500_000, tzinfo=UTC))
        assert span(frame.take([3, 4, 5]), "t") is None
        assert span(frame.slice(1, 3), "t") == (datetime(2024, 5, 1, 22, 30, tzinfo=UTC),
                                                datetime(2024, 5, 2, tzinfo=UTC))
        assert span(frame, "c") is None
        assert span(frame, "nope") is None
        epochs = self._frame(self.epochs, "ts")
        assert span(epochs, "ts") == (datetime(1969, 12, 30, 23, 59, 59, tzinfo=UTC),
                                      datetime(2024, 5, 2, 0, 0, 0, 123_000, tzinfo=UTC))

    def test_each_partition_knows_its_span(self) -> None:
        from .eventtime import span
        from .layout import Layout

        layout = Layout(PipelineSettings(partition_by="event:t",
                                         key_template="{field:c}/%Y/%m/%d/{uuid}.{ext}"))
        parts = layout.partition(self._frame(self.timed, "t"), {}, self.received)
        assert len(parts) == 6
        assert {p.span for p in parts} - {None}
        for part in parts:
            assert part.span == span(part.frame, "t"), part.values

    def test_partition_fields_with_nulls_lists_and_missing_columns(self) -> None:
        records: list[dict[str, Any]] = [{"n": 1, "tags": ["a", "b"]}, {"n": None, "tags": ["a", "b"]},
                   {"tags": ["a", "b"]}, {"n": 1, "tags": []}, {"n": 1, "tags": ["a", "b"]}]
        parts, _ = self._partitions(records, "{field:n}/{field:tags}/{field:nope}/{uuid}.{ext}",
                                    time_field=None)
        now = "2030-01-01T00:00:00+00:00"  # a template without strftime codes: the year
        assert parts == {(now, (1, ("a", "b"), None)): [0, 4],
                         (now, (None, ("a", "b"), None)): [1, 2],
                         (now, (1, (), None)): [3]}


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
