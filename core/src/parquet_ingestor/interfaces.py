"""The four component interfaces, as Protocols, and the small types that pass between them.

The pipeline reads a batch of :class:`Message` from a **Source**, a **Transformer** turns it into
records, an **Encoder** decodes them into a :class:`Frame` and streams it into a writer opened by
a **Sink**, and only after the sink commits does the source acknowledge the messages.

Components do not need to inherit from anything: matching these methods is enough. The base
classes at the end give the optional methods sensible defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Protocol, runtime_checkable

from .message import Message, Rejection

# --------------------------------------------------------------------------------------- source


@runtime_checkable
class Source(Protocol):
    """Where messages come from (SQS, a file, Kafka...).

    A source keeps every message it handed out *leased* (invisible to other consumers) until it
    is acked or nacked: the pipeline may hold a message for minutes while its batch fills, so a
    source whose leases expire (SQS visibility, Redis claim time) must extend them itself.

    Threads: ``receive`` is called from one thread (the receive loop); ``ack`` and ``nack`` from
    the flush workers, concurrently; ``close`` once, after the workers have stopped.
    """

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        """Return up to ``max_messages``, waiting at most ``timeout`` seconds; ``[]`` if none."""
        ...

    def ack(self, messages: Sequence[Message]) -> None:
        """Settle messages for good: they were durably written (or sent to the error sink).

        Raise :class:`~parquet_ingestor.errors.PartialAckError` naming the ones that failed
        when only some did, so only those are retried.
        """
        ...

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        """Give messages back so they are delivered again.

        ``delay=None`` means the source's own configured redelivery delay (SQS ``retry_delay``);
        ``delay=0`` means at once. The pipeline nacks rejected messages when no error sink is
        set, batches whose write failed after all retries, and unflushed messages on abort.
        """
        ...

    def close(self) -> None:
        """Release every message still leased and free resources. Idempotent."""
        ...

    @property
    def exhausted(self) -> bool:
        """True once a finite source (a file) has nothing more to give."""
        ...


# ---------------------------------------------------------------------------------- transformer


@dataclass
class TransformResult:
    """Records made from a batch, and the messages that could not be turned into records."""

    records: Any  # RecordList, JsonLines, or a form an encoder understands
    rejected: list[Rejection] = field(default_factory=list)


@runtime_checkable
class Transformer(Protocol):
    """Turns a batch of messages into records, rejecting the ones it cannot read."""

    def transform(self, messages: Sequence[Message]) -> TransformResult: ...


# -------------------------------------------------------------------------------------- encoder


@runtime_checkable
class Frame(Protocol):
    """Decoded rows ready to encode (a list of dicts, an Arrow table...).

    ``sources[i]`` is the batch index of the message row ``i`` came from.
    """

    sources: Sequence[int]

    def __len__(self) -> int: ...

    def take(self, indices: Sequence[int]) -> Frame:
        """The rows at ``indices``, in that order."""
        ...

    def slice(self, start: int, stop: int) -> Frame: ...

    def group_rows(
        self, time_field: str | None, time_unit: str, fields: Sequence[str]
    ) -> Mapping[tuple[datetime | None, tuple[Any, ...]], Sequence[int]]:
        """Row indices per partition: (event time floored to ``time_unit`` or None, field values).

        Rows whose ``time_field`` is missing or unusable get ``None`` as their time.
        """
        ...

    def time_range(self, time_field: str) -> tuple[datetime, datetime] | None:
        """Min and max event time in ``time_field``, for the file's metadata."""
        ...


@dataclass
class Decoded:
    """An encoder's view of a batch: the frame to write, and rows it could not decode."""

    frame: Frame
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (message index, reason)


class FrameWriter(Protocol):
    """Writes frames into one open file; ``close`` finishes the file (footer, metadata)."""

    def write(self, frame: Frame) -> None: ...

    def close(self, metadata: Mapping[str, str]) -> None: ...


@runtime_checkable
class Encoder(Protocol):
    """Turns records into a file format, streaming into a sink's writer."""

    extension: str  # "parquet", "jsonl.gz"
    content_type: str  # "application/vnd.apache.parquet"

    def decode(self, records: Any) -> Decoded:
        """Decode a transformer's records into a frame (may reject some messages)."""
        ...

    def open(self, stream: BinaryIO, frame: Frame) -> FrameWriter:
        """Start a file in ``stream``; ``frame`` is the first data (for its schema)."""
        ...


# ----------------------------------------------------------------------------------------- sink


class SinkWriter(Protocol):
    """A file being written: invisible until ``commit``; ``abort`` leaves nothing behind."""

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Where files go (a local directory, S3...)."""

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> SinkWriter:
        """Start writing ``key`` (relative to the sink's root or prefix)."""
        ...

    def url(self, key: str) -> str:
        """Where ``key`` ends up, for logs: ``s3://bucket/prefix/key``, ``file:///...``."""
        ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------- commit sets


class SinkTransaction(Protocol):
    """A commit set: files opened together that become visible together (or not at all).

    ``open`` returns a :class:`SinkWriter`; inside a transaction the writer's ``commit()`` only
    *stages* the file (finished, not yet visible) and ``abort()`` drops that one file.
    ``commit(summary)`` then publishes every staged file in one step (one table snapshot for a
    table sink), and ``abort()`` drops them all. ``summary`` carries ``ingest.commit-id`` (unique
    per commit set; a sink that retries a commit uses it to find out whether a commit whose
    answer was lost went through), record and message counts, and the writer version.

    Threads: one transaction is used by one thread at a time; different transactions of one
    sink may run concurrently (several flush workers).
    """

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> SinkWriter: ...

    def commit(self, summary: Mapping[str, str]) -> None: ...

    def abort(self) -> None: ...


@runtime_checkable
class TransactionalSink(Protocol):
    """A sink that can commit several files at once: it has ``begin()``.

    Sinks without ``begin()`` (one object at a time: file, s3, most third-party sinks) are
    wrapped by :class:`PerFileTransaction`, so the pipeline always speaks in commit sets.
    """

    def begin(self) -> SinkTransaction: ...


@dataclass(frozen=True)
class SinkRequirements:
    """What a sink needs the encoder to write (a table sink: its schema and partitioning).

    A sink may offer these through an optional ``requirements()`` method; an encoder that
    supports them has an optional ``require(requirements)`` method, called before the first
    file. ``schema`` is in the encoder's own terms (an Arrow schema for Arrow-based encoders).
    """

    schema: Any = None
    partition_fields: tuple[str, ...] = ()
    field_ids: bool = False  # write the schema's field ids into each file (Iceberg)


class PerFileTransaction:
    """The default commit set for sinks that write one object at a time.

    Files are staged uncommitted; ``commit`` commits each in turn, so each file stays
    all-or-nothing, but a failure part-way can leave earlier files of the set visible
    (the pipeline then nacks the set's messages: at-least-once, possible duplicates).
    """

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._staged: list[SinkWriter] = []

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> SinkWriter:
        return _StagedWriter(self.sink.open(key, content_type, metadata), self._staged)

    def commit(self, summary: Mapping[str, str]) -> None:
        staged, self._staged = self._staged, []
        for index, writer in enumerate(staged):
            try:
                writer.commit()
            except BaseException:
                for rest in staged[index + 1:]:
                    rest.abort()
                raise

    def abort(self) -> None:
        staged, self._staged = self._staged, []
        for writer in staged:
            writer.abort()


class _StagedWriter:
    """A sink writer whose ``commit`` waits for its transaction's."""

    def __init__(self, inner: SinkWriter, staged: list[SinkWriter]) -> None:
        self._inner = inner
        self._staged = staged

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._inner.write(data)

    def commit(self) -> None:
        self._staged.append(self._inner)

    def abort(self) -> None:
        self._inner.abort()


def begin(sink: Sink) -> SinkTransaction:
    """A commit set on ``sink``: its own ``begin()``, or the per-file adapter."""
    own = getattr(sink, "begin", None)
    return own() if callable(own) else PerFileTransaction(sink)


# ----------------------------------------------------------------------------------- base classes


@dataclass
class RunContext:
    """What a running pipeline tells its components when it starts them (``start(context)``)."""

    workers: int
    metrics: Any  # parquet_ingestor.metrics.Metrics
    #: the pipeline's settings (partition_by, key_template...): a table sink derives its
    #: partitioning from how the pipeline splits files
    settings: Any = None  # parquet_ingestor.pipeline.PipelineSettings


class BaseSource:
    """Defaults for the optional parts of :class:`Source`."""

    @property
    def exhausted(self) -> bool:
        return False

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        """Sources without redelivery simply forget; override where the source can redeliver."""

    def close(self) -> None:
        pass


class BaseSink:
    """Defaults for the optional parts of :class:`Sink`."""

    def close(self) -> None:
        pass


class FunctionTransformer:
    """The easy path: one Python function per message.

    The function gets a :class:`Message` and returns a dict (one record), a list of dicts, or
    None (no record). Raising any exception rejects the message with the exception as reason::

        def parse(message):
            record = message.json()  # orjson with the `fast` extra: ~3x json.loads
            record["amount_cents"] = round(record["amount"] * 100)
            return record

        transformer = FunctionTransformer(parse)
    """

    def __init__(self, func: Callable[[Message], Any]) -> None:
        self.func = func

    def transform(self, messages: Sequence[Message]) -> TransformResult:
        from .records import RecordList

        rows: list[dict[str, Any]] = []
        sources: list[int] = []
        rejected: list[Rejection] = []
        func = self.func
        for index, message in enumerate(messages):
            try:
                out = func(message)
            except Exception as exc:  # noqa: BLE001 - a bad message must not stop the batch
                rejected.append(Rejection(message, f"{type(exc).__name__}: {exc}"))
                continue
            if out is None:
                continue
            if isinstance(out, dict):
                rows.append(out)
                sources.append(index)
            elif isinstance(out, Iterable):
                for row in out:
                    rows.append(row)
                    sources.append(index)
            else:
                rejected.append(Rejection(message, f"transformer returned {type(out).__name__}"))
        return TransformResult(RecordList(rows, sources), rejected)
