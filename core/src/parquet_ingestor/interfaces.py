"""The four component interfaces, as Protocols, and the small types that pass between them.

The pipeline reads a batch of :class:`Message` from a **Source**, a **Transformer** turns it into
records, an **Encoder** decodes them into a :class:`Frame` and streams it into a writer opened by
a **Sink**, and only after the sink commits does the source acknowledge the messages.

Components do not need to inherit from anything: matching these methods is enough. The base
classes at the end give the optional methods sensible defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple, Protocol, runtime_checkable

from .batcher import BatchLimits
from .message import Message, Rejection

# ------------------------------------------------------------------------------------ lifecycle


@runtime_checkable
class Lifecycle(Protocol):
    """The start and close every component may have (sources, transformers, encoders, sinks).

    Both are optional: the pipeline calls each one a component has. ``start(context)`` runs
    once before the run (sinks first, the source last, so nothing is received when another part
    fails to start; raise :class:`~parquet_ingestor.errors.ConfigError` for a bad setting or a
    missing bucket). ``close()`` runs once after the run, after the flush workers have stopped,
    and for the components already started when a later one failed to start.

    Threads: both from the thread that called ``Pipeline.run()``.
    """

    def start(self, context: RunContext) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------- source


@runtime_checkable
class Source(Protocol):
    """Where messages come from (SQS, a file, Kafka...).

    A source keeps every message it handed out *leased* (invisible to other consumers) until it
    is acked or nacked: the pipeline may hold a message for minutes while its batch fills, so a
    source whose leases expire (SQS visibility, Redis claim time) must extend them itself.

    Threads: ``receive`` is called from one thread (the receive loop); ``ack`` and ``nack`` from
    the flush workers, concurrently; ``close`` once, after the workers have stopped. An optional
    ``start(context)`` runs before the first ``receive`` (see :class:`Lifecycle`).

    Optional attributes: ``hold_budget`` (seconds a message can be held at most, e.g. SQS's
    12 h visibility cap less a margin; files that outlive a batch commit before it runs out)
    and ``settles_without_body`` (True when ``ack``/``nack`` need only a message's id,
    attributes and handle: the pipeline then drops the bodies of messages whose rows wait in
    open files, so memory holds encoded rows rather than the input). Optional methods and
    properties: ``stop_reading()`` for a source that cannot redeliver (stdin, files): a drain
    calls it, then receives until the source is exhausted, so every line read is written;
    ``pending_redelivery`` (int) for a source that can tell which nacked messages it will
    deliver again: an ``--exit-when-idle`` run that ends with some exits 1; ``pollers``
    (int) for a source that receives on pollers of its own (SQS): the ``pollers`` gauge.

    Blocks of lines: when ``RunContext.multi_record`` is True a source may hand over one
    message per block of N whole lines (``records = N``; the body is the lines joined by
    ``\n``), so a fast reader parses the block without a bytes object and a Message per line.
    Such a source must offer ``split(message) -> Sequence[Message]``: one message per
    non-blank line, with the line's own id and body, which replace the block in the source's
    bookkeeping (each is then acked, nacked or rejected on its own; the block itself is never
    settled). The pipeline calls it (on a flush worker) when any line of a block is
    rejected, and flushes the batch again with the block's lines, so errors stay per line; a
    source should also split a block that is nacked, so a poison line cannot keep its
    neighbours from being written.

    Pollers on auto: a source with background poll threads opts in to the autoscaler with
    ``pollers`` (int, how many poll now), ``poller_bounds`` (``(fewest, most)`` while they are
    on auto, e.g. its ``pollers=auto`` option; None otherwise) and ``resize_pollers(n)``
    (start or retire pollers; return the count now in force). ``resize_pollers`` is called
    from the autoscaler's thread, concurrently with ``receive``, ``ack`` and ``nack``; a
    retired poller finishes its current poll and hands over what it got.
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
    """Turns a batch of messages into records, rejecting the ones it cannot read.

    Optional ``multi_record`` (bool): True when ``transform`` reads a message with
    ``records = N > 1`` as N records, one per line of its body (blocks; see :class:`Source`).
    It may then reject such a message as a whole when a line is bad: the pipeline splits it
    into its lines and transforms the batch again, so each line is settled on its own.

    Threads: ``transform`` runs on the flush workers, concurrently. Optional ``start(context)``
    and ``close()`` (see :class:`Lifecycle`) bracket the run.
    """

    def transform(self, messages: Sequence[Message]) -> TransformResult: ...


# -------------------------------------------------------------------------------------- encoder


class FrameGroup(NamedTuple):
    """Rows of a frame with equal keys (:meth:`Frame.group`).

    ``epoch`` is ``(bucket, low, high)`` for rows whose time is an instant: the bucket in whole
    epoch seconds (floored to a multiple of the width asked for), and the earliest and latest
    time in epoch microseconds. None for rows without a usable time.
    """

    values: tuple[Any, ...]  # the values of ``fields`` (None where missing)
    rows: Sequence[int]  # ascending row indices
    epoch: tuple[int, int, int] | None = None


@runtime_checkable
class Frame(Protocol):
    """Decoded rows ready to encode (a list of dicts, an Arrow table...).

    ``sources[i]`` is the batch index of the message row ``i`` came from. The core partitions
    frames (:mod:`~parquet_ingestor.layout`, :mod:`~parquet_ingestor.eventtime` holds the
    rules): a frame only groups its rows by equal values, in its own terms (Arrow's group-by,
    a dict).

    Threads: one frame is used by one thread at a time.
    """

    sources: Sequence[int]

    def __len__(self) -> int: ...

    def take(self, indices: Sequence[int]) -> Frame:
        """The rows at ``indices``, in that order."""
        ...

    def slice(self, start: int, stop: int) -> Frame: ...

    def group(
        self, fields: Sequence[str], time_field: str | None = None, seconds: int = 0,
        read: Callable[[Any], int | None] | None = None,
    ) -> Sequence[FrameGroup]:
        """The rows grouped by equal values of ``fields`` and by the bucket of their time.

        A row's time, in epoch microseconds: what the frame holds as an instant (a timestamp
        column, a ``datetime``; a naive one's reading as UTC), else ``read(value)``, which the
        core passes with ``time_field`` and which holds the rules (None: no usable time). Call
        ``read`` once per distinct value (dictionary-encode a column, say), not once a row, to
        stay vectorized. The bucket floors the time to a multiple of ``seconds`` (integer
        division; 0 puts every instant in one bucket, 0). Every row is in exactly one group;
        a missing column reads as None.
        """
        ...


@dataclass
class Decoded:
    """An encoder's view of a batch: the frame to write, and rows it could not decode."""

    frame: Frame
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (message index, reason)


class FrameWriter(Protocol):
    """Writes frames into one open file; ``close`` finishes the file (footer, metadata).

    Optional ``fits(frame) -> bool``: whether ``frame`` can go into this file as it is (False
    when the frame has a column the file's schema lacks, say a field that appeared after the
    file was opened). A file stays open across batches (``--target-file-size``); on False the
    core commits it and starts another with the frame, so no value is dropped. Without
    ``fits`` every frame is taken to fit.
    """

    def write(self, frame: Frame) -> None: ...

    def close(self, metadata: Mapping[str, str]) -> None: ...


@runtime_checkable
class Encoder(Protocol):
    """Turns records into a file format, streaming into a sink's writer.

    Threads: ``decode`` and ``open`` run on the flush workers, concurrently; one
    :class:`FrameWriter` is used by one thread. Optional ``start(context)`` and ``close()``
    (see :class:`Lifecycle`) bracket the run; optional ``require(SinkRequirements)`` is called
    before the first file when the sink has requirements.
    """

    extension: str  # "parquet", "jsonl.gz"
    content_type: str  # "application/vnd.apache.parquet"

    def decode(self, records: Any) -> Decoded:
        """Decode a transformer's records into a frame (may reject some messages).

        A row of a block (a message of several records) that cannot be decoded rejects the
        block's index; the pipeline then decodes the block's lines one by one."""
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
    """Where files go (a local directory, S3...).

    Threads: ``open`` and the writers run on the flush workers, concurrently (one writer per
    thread); ``close`` once after the run. Optional: ``start(context)`` (see :class:`Lifecycle`),
    ``begin()`` (see :class:`TransactionalSink`) and ``requirements()`` (see
    :class:`SinkRequirements`). Optional attribute ``pipeline_defaults``: pipeline option values
    (``{"target_file_size": "128MiB"}``) used when the run sets none, e.g. a table sink asking
    for larger files and so fewer snapshots; ``build_pipeline`` (CLI, TOML) applies them.
    """

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
    answer was lost went through), ``ingest.files``, ``ingest.records`` and ``ingest.messages``
    counts, and ``ingest.writer`` (the writer version).

    ``commit`` raises only when nothing of the set became visible (after the sink's own retries),
    or :class:`~parquet_ingestor.errors.PartialCommitError` naming the files that did not when
    the set is not atomic. The pipeline then writes the failed files again under the same keys,
    in a new transaction with the same ``ingest.commit-id``, within its write retry budget; a
    sink that finds that commit id already committed returns without committing twice.

    Threads: one transaction is used by one thread at a time; different transactions of one
    sink may run concurrently (several flush workers).

    Optional ``join(other) -> bool``: take over the staged files of ``other`` (a set begun on
    the same sink, whose files are all staged), so that one ``commit`` publishes both; ``other``
    is left empty. Files that outlive a batch each begin their own set (they close at different
    times); when several close together (the end of a run, ``--max-held-bytes``) the pipeline
    joins their sets, so a table sink makes one snapshot of them. False (or no ``join``): they
    commit one set after another.
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

    A sink may offer these through an optional ``requirements()`` method (called after its
    ``start``; ``None``: nothing required); the pipeline hands them to the encoder's optional
    ``require(requirements)`` method before the first file, and refuses to start (a one-line
    error) when the sink requires something and the encoder has no ``require``. ``schema`` is in
    the encoder's own terms (an Arrow schema for Arrow-based encoders).
    """

    schema: Any = None
    partition_fields: tuple[str, ...] = ()
    field_ids: bool = False  # write the schema's field ids into each file (Iceberg)


class PerFileTransaction:
    """The default commit set for sinks that write one object at a time.

    Files are staged uncommitted; ``commit`` commits each in turn, so each file stays
    all-or-nothing. A file whose commit fails is aborted and the others still commit; then
    :class:`~parquet_ingestor.errors.PartialCommitError` names the failed ones, so only their
    messages are nacked (and only they are written again): no file is committed twice.
    """

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._staged: list[_StagedWriter] = []

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> SinkWriter:
        return _StagedWriter(key, self.sink.open(key, content_type, metadata), self._staged)

    def commit(self, summary: Mapping[str, str]) -> None:
        staged, self._staged = self._staged, []
        errors: dict[str, BaseException] = {}
        for index, writer in enumerate(staged):
            try:
                writer.inner.commit()
            except Exception as exc:  # noqa: BLE001 - the others still commit
                errors[writer.key] = exc
                _abort_quietly(writer.inner, writer.key)
            except BaseException:
                for rest in staged[index:]:
                    _abort_quietly(rest.inner, rest.key)
                raise
        if errors:
            from .errors import PartialCommitError

            raise PartialCommitError(errors)

    def abort(self) -> None:
        staged, self._staged = self._staged, []
        for writer in staged:
            _abort_quietly(writer.inner, writer.key)


class _StagedWriter:
    """A sink writer whose ``commit`` waits for its transaction's."""

    def __init__(self, key: str, inner: SinkWriter, staged: list[_StagedWriter]) -> None:
        self.key = key
        self.inner = inner
        self._staged = staged

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self.inner.write(data)

    def commit(self) -> None:
        self._staged.append(self)

    def abort(self) -> None:
        if self in self._staged:
            self._staged.remove(self)
        self.inner.abort()


def _abort_quietly(writer: SinkWriter, key: str) -> None:
    try:
        writer.abort()
    except Exception:  # noqa: BLE001 - cleanup; the upload expires by lifecycle rule anyway
        logging.getLogger("parquet_ingestor").exception("abort of %s failed", key)


def begin(sink: Sink) -> SinkTransaction:
    """A commit set on ``sink``: its own ``begin()``, or the per-file adapter."""
    own = getattr(sink, "begin", None)
    return own() if callable(own) else PerFileTransaction(sink)


# ----------------------------------------------------------------------------------- base classes


@dataclass
class RunContext:
    """What a running pipeline tells its components when it starts them (``start(context)``).

    ``batch`` is the flush limits; the pipeline holds at most :attr:`batches_held` batches
    unsettled at once (one filling, ``workers`` queued, ``workers`` being written; with
    ``--workers auto``, ``workers`` is ``--max-workers``). A source
    whose system caps unacknowledged messages (JetStream ``max_ack_pending``, a Kafka fetch
    window) sizes that cap from :meth:`in_flight_messages`: a smaller cap stalls a batch that
    waits for bytes which cannot arrive. ``max_deliveries`` is ``--max-deliveries``.
    """

    workers: int
    metrics: Any  # parquet_ingestor.metrics.Metrics
    batch: BatchLimits | None = None
    max_deliveries: int | None = None
    #: the output sink, for a component that reads back what earlier runs wrote (the Parquet
    #: encoder reads the dataset's schema from the newest file at ``sink.url("")``)
    sink: Any = None
    #: the field named by ``--partition-by event:FIELD`` (an encoder may store it as a time)
    event_time_field: str | None = None
    #: the pipeline's settings (partition_by, key_template...): a table sink derives its
    #: partitioning from how the pipeline splits files
    settings: Any = None  # parquet_ingestor.pipeline.PipelineSettings
    #: the source may hand over blocks: messages of several records (``Message.records``,
    #: one per line). True when the transformer reads them (its ``multi_record``) and
    #: ``--batch-max-records`` is off (it counts messages, and a block is one)
    multi_record: bool = False

    @property
    def batches_held(self) -> int:
        """Most batches the pipeline holds unsettled at once."""
        return 2 * self.workers + 1

    def in_flight_messages(self, message_bytes: int = 1024) -> int | None:
        """Most messages the pipeline may hold unsettled at once, for messages of about
        ``message_bytes`` each; None when the batch limits are unknown."""
        if self.batch is None:
            return None
        per_batch = max(1, -(-self.batch.max_bytes // max(1, message_bytes)))
        if self.batch.max_records:
            per_batch = min(per_batch, self.batch.max_records)
        return per_batch * self.batches_held

    @property
    def in_flight_bytes(self) -> int | None:
        """Most body bytes the pipeline may hold unsettled at once (None: limits unknown)."""
        return None if self.batch is None else self.batch.max_bytes * self.batches_held


class BaseSource:
    """Defaults for the optional parts of :class:`Source`."""

    def start(self, context: RunContext) -> None:
        pass

    @property
    def exhausted(self) -> bool:
        return False

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        """Sources without redelivery simply forget; override where the source can redeliver."""

    def close(self) -> None:
        pass


class BaseSink:
    """Defaults for the optional parts of :class:`Sink`."""

    def start(self, context: RunContext) -> None:
        pass

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
