"""Commit: a batch's rows to files, files to the sink, and only then ack (or nack).

A flush settles every message of its batch exactly one way: written then acked; rejected to the
error sink then acked; or nacked so the source delivers it again. Its files form one commit set
(:func:`commit_set`, the one open -> write -> commit-or-abort sequence: data files, manifests
and the error sink all go through it), and acks follow the set's commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, BinaryIO

from . import eventtime
from .batcher import Batch
from .errors import Aborted, PartialAckError, PartialCommitError
from .gcpause import gc_paused
from .interfaces import Decoded, Frame, Sink, SinkTransaction, SinkWriter, begin
from .layout import Partition, without
from .logs import reason_summary
from .memory import HELD_MESSAGE_BYTES
from .message import Message, Rejection, count_records
from .openfiles import Held, OpenFile, OpenFiles
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .runner import Pipeline

log = logging.getLogger("parquet_ingestor")

MANIFEST_SUFFIX = ".manifest.json"
#: a file's event-time span is read from its rows (the partition's does not fit it)
_SPAN_OF_ROWS = object()


@dataclass
class FileResult:
    """One file written: where, what and how long."""

    key: str
    url: str
    rows: int
    bytes: int
    messages: int
    seconds: float


@dataclass
class FlushResult:
    """How one batch was settled; observers get it through ``ingest_batch_flushed``.

    With ``target_file_size`` (files that outlive a batch) the batch's rows wait in open
    files: ``files`` is then empty and its messages are acked when those files commit (see
    ``Pipeline.files`` and the ``files_written``/``acked`` metrics)."""

    batch_id: int
    messages: int
    input_bytes: int
    files: list[FileResult] = field(default_factory=list)
    rejected: int = 0
    acked: int = 0
    nacked: int = 0
    seconds: float = 0.0
    error: str | None = None
    #: rows of nacked messages that were committed in another file of the batch (written
    #: again when the message is redelivered)
    possible_duplicate_rows: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


class CountingStream:
    """The writable an encoder sees: counts bytes, and stops the write when the run aborts."""

    def __init__(self, inner: Any, abort: threading.Event) -> None:
        self._inner = inner
        self._abort = abort
        self.count = 0
        self.closed = False
        self._stopped = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._abort.is_set():
            if not self._stopped:
                self._stopped = True
                raise Aborted("aborted during write")
            # already stopped: later writes (an encoder's buffered stream flushing as it is
            # destroyed) are dropped quietly, so Arrow prints no "Error ignored" traceback;
            # the commit is refused anyway
            return len(data) if not isinstance(data, memoryview) else data.nbytes
        self._inner.write(data)
        n = len(data) if not isinstance(data, memoryview) else data.nbytes
        self.count += n
        return n

    def tell(self) -> int:
        return self.count

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:  # the sink's commit decides; encoders may call close freely
        self.closed = True


class CommitGate:
    """Commits against an abort: a commit starts only while the run is not aborted, checked
    under the lock that :meth:`running` takes, so the runner, once aborted, sees every commit
    that started and waits for it before the source is closed (closing releases what the
    source holds): nothing is both released and committed."""

    def __init__(self, abort: threading.Event) -> None:
        self._abort = abort
        self._lock = threading.Lock()
        self._running = 0

    @contextlib.contextmanager
    def commit(self) -> Iterator[None]:
        with self._lock:
            if self._abort.is_set():
                raise Aborted("aborted before commit")
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1

    def running(self) -> int:
        with self._lock:
            return self._running


@dataclass(eq=False)
class PendingFile:
    """One file of a commit set: its key, how to fill it, and the batch messages in it."""

    key: str
    content_type: str
    metadata: Mapping[str, str]
    fill: Callable[[BinaryIO], object]  # writes the whole file into the stream
    rows: int = 0
    messages: Sequence[int] = ()  # batch indices of the messages with rows in this file
    sources: Sequence[int] = ()  # per row: its message's batch index
    bytes: int = 0
    failures: int = 0
    error: BaseException | None = None
    started: float = 0.0
    batch: Sequence[Message] = ()  # what ``messages`` index into (to count a block's lines)

    @property
    def message_count(self) -> int:
        """Messages with rows in this file, a block counting its lines (as ``received``)."""
        return _message_count(self.batch, self.messages)


def _message_count(batch: Sequence[Message], indices: Iterable[int]) -> int:
    return count_records(batch[i] for i in indices) if batch else len(list(indices))


@dataclass
class SetOutcome:
    """What became of a commit set: the files committed and the files failed for good."""

    commit_id: str
    committed: list[PendingFile] = field(default_factory=list)
    failed: list[PendingFile] = field(default_factory=list)


def commit_set(
    sink: Sink, files: Sequence[PendingFile], *, retry: RetryPolicy, abort: threading.Event,
    on_retry: Callable[[], object] | None = None, gate: CommitGate | None = None,
) -> SetOutcome:
    """Open, write and commit ``files`` as one commit set of ``sink`` (the one place that does).

    Each file is opened in the set, filled and staged; a file that fails is aborted and written
    again, up to ``retry.attempts`` tries in all, counting failed commits too. Then the set is
    committed; files whose commit failed are written again in a new set with the same commit
    id. Raises :class:`Aborted` (after aborting the set) when the run aborts; otherwise returns
    which files committed and which failed for good.
    """
    outcome = SetOutcome(uuid.uuid4().hex)
    pending = list(files)
    while pending:
        transaction = begin(sink)
        staged: list[PendingFile] = []
        try:
            for file in pending:
                (staged if _stage(transaction, file, sink, retry, abort, on_retry)
                 else outcome.failed).append(file)
            if abort.is_set():
                raise Aborted("aborted before commit")
        except BaseException:
            _quietly(transaction.abort, "abort of a commit set")
            raise
        if not staged:
            _quietly(transaction.abort, "abort of an empty commit set")
            break
        try:
            with gate.commit() if gate is not None else contextlib.nullcontext():
                transaction.commit(_summary(outcome.commit_id, staged))
            errors: Mapping[str, BaseException] = {}
        except Aborted:  # the gate refused: the abort came after the check above
            _quietly(transaction.abort, "abort of a commit set")
            raise
        except PartialCommitError as exc:
            errors = exc.errors
        except Exception as exc:  # noqa: BLE001 - nothing of the set is visible: try again
            _quietly(transaction.abort, "abort of a failed commit set")
            errors = {file.key: exc for file in staged}
        pending = []
        for file in staged:
            error = errors.get(file.key)
            if error is None:
                outcome.committed.append(file)
                continue
            file.failures += 1
            file.error = error
            (outcome.failed if file.failures >= retry.attempts or abort.is_set()
             else pending).append(file)
        if pending:
            wait = retry.delay(max(file.failures for file in pending))
            log.warning("commit of %d file(s) failed (attempt %d of %d), retrying in %.2fs: %s",
                        len(pending), pending[0].failures, retry.attempts, wait,
                        pending[0].error)
            for _ in pending:
                if on_retry is not None:
                    on_retry()
            if abort.wait(wait):
                raise Aborted("aborted while retrying a commit")
    return outcome


def _stage(
    transaction: SinkTransaction, file: PendingFile, sink: Sink, retry: RetryPolicy,
    abort: threading.Event, on_retry: Callable[[], object] | None,
) -> bool:
    """Open, fill and stage one file, retrying; False once it failed for good."""
    file.started = file.started or time.monotonic()
    while True:
        writer: SinkWriter | None = None
        try:
            writer = transaction.open(file.key, file.content_type, file.metadata)
            stream = CountingStream(writer, abort)
            file.fill(_as_binary(stream))
            writer.commit()
            file.bytes = stream.count
            return True
        except BaseException as exc:
            if writer is not None:
                _quietly(writer.abort, f"abort of {sink.url(file.key)}")
            if isinstance(exc, Aborted) or not isinstance(exc, Exception):
                raise
            file.failures += 1
            file.error = exc
            if file.failures >= retry.attempts or abort.is_set():
                return False
            wait = retry.delay(file.failures)
            log.warning("write %s failed (attempt %d of %d), retrying in %.2fs: %s",
                        sink.url(file.key), file.failures, retry.attempts, wait, exc)
            if on_retry is not None:
                on_retry()
            if abort.wait(wait):
                raise Aborted(f"write {sink.url(file.key)}: aborted while retrying") from exc


def _no_fill(stream: BinaryIO) -> None:
    raise AssertionError("a file already written")


def _summary(commit_id: str, files: Sequence[PendingFile]) -> dict[str, str]:
    messages: set[int] = set()
    for file in files:
        messages.update(file.messages)
    batch = files[0].batch if files else ()
    return {
        "ingest.commit-id": commit_id,
        "ingest.files": str(len(files)),
        "ingest.records": str(sum(file.rows for file in files)),
        "ingest.messages": str(_message_count(batch, messages)),
        "ingest.writer": writer_version(),
    }


def _quietly(action: Callable[[], object], what: str) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 - cleanup must not hide the error being handled
        log.exception("%s failed", what)


class Committer:
    """Settles batches for a pipeline: transform, decode, lay out, write, then ack or nack.

    Each flush writes its files as one commit set and acks strictly after the set committed.
    A file that fails for good fails only the messages with rows in it (nacked); the rest of
    the batch is acked.

    Threads: ``flush`` runs on the flush workers, concurrently; ``ack``/``release`` also on
    the receive loop (releasing on abort).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.gate = CommitGate(pipeline.abort_event)
        self._batch_ids = iter(range(1, 1 << 62))
        self._bytes_per_row = 0.0
        self.open_files = OpenFiles(self)
        self._held_bytes = 0  # input bytes of unsettled batches whose bodies are kept
        self._held_lock = threading.Lock()

    def bytes_per_row(self) -> float:
        """Encoded bytes per row, estimated from the files committed so far (0: none yet)."""
        return self._bytes_per_row

    def _settle(self, held: Held) -> None:
        """Every file holding rows of a batch is done: nack the messages with a row in a
        failed file, ack the others (rejected ones were routed at flush time)."""
        p = self.pipeline
        if held.nbytes:
            with self._held_lock:
                self._held_bytes -= held.nbytes
        failed = held.failed - held.rejected
        if failed:
            again = sum(1 for sources in held.committed_sources for src in sources
                        if src in failed)
            if again:
                p.metrics.incr("possible_duplicate_rows", again)
            self.release([held.batch[i] for i in sorted(failed)])
        settled = held.rejected | failed
        done = [m for i, m in enumerate(held.batch) if i not in settled]
        if p.aborted:
            self.release(done)
        else:
            self.ack(done)

    def written_open_file(self, file: OpenFile) -> None:
        """Count and log a committed file that spanned batches."""
        messages = sum(len(set(sources)) for sources in file.sources.values())
        pending = PendingFile(file.key, "", {}, _no_fill, file.rows, range(messages),
                              bytes=file.stream.count, started=file.opened)
        self._written(pending, time.monotonic() - file.opened, None)

    def flush(self, batch: Sequence[Message], worker: int = 0) -> FlushResult:
        """Settle one batch."""
        p = self.pipeline
        started = time.monotonic()
        now = datetime.now(UTC)
        nbytes = batch.nbytes if isinstance(batch, Batch) else total_size(batch)
        result = FlushResult(next(self._batch_ids), count_records(batch), nbytes)
        rejected: dict[int, str] = {}
        held: Held | None = None
        failed: set[int] = set()
        try:
            decoded, parts = self._prepare(batch, rejected, now)
            # a block with a rejected line: again, with the rejected blocks as their lines;
            # until no block is rejected (the first pass may have changed what fits, say a
            # column's type, so another block can fail on the next), at most once a block
            while rejected and (lines := self._split(batch, rejected)) is not None:
                # blank lines have no message once split: they were received, count them
                # settled so that received = acked + nacked (+ held) still adds up
                p.metrics.incr("acked", count_records(batch) - count_records(lines))
                batch = lines
                rejected.clear()
                decoded, parts = self._prepare(batch, rejected, now)
            if p.settings.spans_batches:
                # rows go into the partitions' open files; acks when those files commit
                held = Held(batch, set(rejected), started - p.settings.batch.max_age,
                            self._settle)
                bodyless = self._let_bodies_go(batch, rejected)
                guess = nbytes / max(1, len(decoded.frame)) / 2
                for part in parts:
                    frame = without(part.frame, rejected) if rejected else part.frame
                    if len(frame):
                        self.open_files.append(part, frame, held, worker, guess)
            else:
                files: list[PendingFile] = []
                for part in parts:
                    frame = without(part.frame, rejected) if rejected else part.frame
                    if len(frame):
                        files.extend(self._plan(frame, part, worker, nbytes, batch))
                failed = self._write(files, batch, result)
        except Aborted:
            if held is not None:
                held.cancel()
            result.error = "aborted"
            self.release(batch)
            return self._finish(result, started)
        except Exception as exc:  # noqa: BLE001 - a component failed: nothing was committed
            if held is not None:
                held.cancel()
            result.error = f"{type(exc).__name__}: {exc}"
            p.metrics.incr("write_failures")
            log.error("batch %d: write failed, releasing %d messages for redelivery: %s",
                      result.batch_id, len(batch), result.error)
            result.nacked = self.release(batch)
            return self._finish(result, started)

        if rejected:
            self._route_rejected([Rejection(batch[i], r) for i, r in sorted(rejected.items())],
                                 result, worker)
        if held is not None:
            self._seal(held, len(batch) * HELD_MESSAGE_BYTES if bodyless else nbytes)
            return self._finish(result, started)
        if failed:
            result.nacked += self.release([batch[i] for i in sorted(failed)])
        # written (committed) messages are acknowledged even after an abort: released, they
        # would be written twice
        settled = rejected.keys() | failed
        done = [m for i, m in enumerate(batch) if i not in settled] if settled else batch
        result.acked += self.ack(done)
        return self._finish(result, started)

    def _prepare(
        self, batch: Sequence[Message], rejected: dict[int, str], now: datetime,
    ) -> tuple[Decoded, list[Partition]]:
        """Transform, decode and lay out a batch; rejected messages go into ``rejected``."""
        p = self.pipeline
        with gc_paused():
            transformed = p.transformer.transform(batch)
            if transformed.rejected:
                index = {id(m): i for i, m in enumerate(batch)}
                for rejection in transformed.rejected:
                    rejected.setdefault(index[id(rejection.message)], rejection.reason)
            decoded = p.encoder.decode(transformed.records)
            # free the records (maybe 100k dicts) by refcount before the collector is back,
            # so it never scans or promotes them
            del transformed
        for source_index, reason in decoded.rejected:
            rejected.setdefault(source_index, reason)
        return decoded, p.layout.partition(decoded.frame, rejected, now)

    def _split(self, batch: Sequence[Message], rejected: Mapping[int, str],
               ) -> list[Message] | None:
        """The batch with each rejected block (a message of several lines) replaced by its
        lines (the source's ``split``), so only the bad lines are rejected; None when no
        rejected message is a block the source can split."""
        split = getattr(self.pipeline.source, "split", None)
        if not callable(split) or all(batch[i].records == 1 for i in rejected):
            return None
        out: list[Message] = []
        for i, message in enumerate(batch):
            if i in rejected and message.records > 1:
                out.extend(split(message))
            else:
                out.append(message)
        log.debug("a batch of %d messages holds rejected lines: flushed again as %d",
                  len(batch), len(out))
        return out

    def _let_bodies_go(self, batch: Sequence[Message], rejected: Mapping[int, str]) -> bool:
        """Drop the bodies of a batch whose rows are decoded and laid out, when the source
        settles without them (``settles_without_body``); rejected messages keep theirs (the
        error sink writes them). True when dropped."""
        if getattr(self.pipeline.source, "settles_without_body", False) is not True:
            return False
        if rejected:
            for i, message in enumerate(batch):
                if i not in rejected:
                    message.body = b""
        else:
            for message in batch:
                message.body = b""
        return True

    def _seal(self, held: Held, nbytes: int) -> None:
        """A batch's rows are all in open files: it settles when they have committed. Its
        messages count ``nbytes`` (their bodies, or ~HELD_MESSAGE_BYTES each once dropped)
        against ``max_held_bytes``, past which every open file commits."""
        p = self.pipeline
        held.nbytes = nbytes
        with self._held_lock:
            self._held_bytes += nbytes
            over = self._held_bytes > p.max_held_bytes
        held.seal()
        if over:
            try:
                self.open_files.close(self.open_files.all(), "max-held-bytes")
            except Aborted:
                self.open_files.abort_all()

    def _finish(self, result: FlushResult, started: float) -> FlushResult:
        p = self.pipeline
        result.seconds = time.monotonic() - started
        p.metrics.incr("batches")
        p.metrics.observe_flush(result.seconds)
        p.metrics.add_in_flight(-result.messages, -result.input_bytes)
        p.call_hook("ingest_batch_flushed", result=result)
        return result

    # ---------------------------------------------------------------- files

    def _plan(
        self, frame: Frame, part: Partition, worker: int, input_bytes: int,
        batch: Sequence[Message] = (),
    ) -> list[PendingFile]:
        """The data files of one partition (``frame``: its rows, less rejected ones): one, or
        several of about ``target_file_size``."""
        rows = len(frame)
        per_row = self._bytes_per_row or (input_bytes / max(1, rows)) / 2
        step = self.pipeline.layout.split(rows, per_row)
        if step >= rows:  # the partition's own span when the file holds all of its rows
            return [self._data_file(frame, part.when, part.values, worker,
                                    part.span if frame is part.frame else _SPAN_OF_ROWS, batch)]
        return [self._data_file(frame.slice(start, min(rows, start + step)), part.when,
                                part.values, worker, batch=batch)
                for start in range(0, rows, step)]

    def _data_file(
        self, frame: Frame, when: datetime, values: dict[str, Any], worker: int,
        span: tuple[datetime, datetime] | None | object = _SPAN_OF_ROWS,
        batch: Sequence[Message] = (),
    ) -> PendingFile:
        """One data file of ``frame``; ``span``: its event-time span when known already."""
        p = self.pipeline
        encoder = p.encoder
        key = p.layout.key(when, encoder.extension, values, worker)
        messages = sorted(set(frame.sources))
        rows = len(frame)
        count = str(_message_count(batch, messages))
        object_meta = {"ingest-records": str(rows), "ingest-messages": count}
        file_meta = {
            "ingest.records": str(rows),
            "ingest.messages": count,
            "ingest.partition_time": when.isoformat(),
            "ingest.writer": writer_version(),
        }
        time_field = p.settings.event_time_field
        if time_field:
            if span is _SPAN_OF_ROWS:
                span = eventtime.span(frame, time_field)
            if isinstance(span, tuple):
                file_meta["ingest.min_event_time"] = span[0].isoformat()
                file_meta["ingest.max_event_time"] = span[1].isoformat()

        def fill(stream: BinaryIO) -> None:
            file_writer = encoder.open(stream, frame)
            file_writer.write(frame)
            file_writer.close(file_meta)

        return PendingFile(key, encoder.content_type, object_meta, fill, rows, messages,
                           frame.sources, batch=batch)

    def _write(
        self, files: list[PendingFile], batch: Sequence[Message], result: FlushResult
    ) -> set[int]:
        """Write the data files (and manifests) as commit sets; the batch indices of the
        messages that must be nacked because a file holding one of their rows failed."""
        if not files:
            return set()
        p = self.pipeline
        outcome = commit_set(p.sink, files, **self._retrying())
        failed_files = list(outcome.failed)
        committed = outcome.committed
        if committed and p.settings.manifest:
            written = commit_set(p.sink, [self._manifest(f, batch) for f in committed],
                                 **self._retrying())
            broken = {f.key.removesuffix(MANIFEST_SUFFIX) for f in written.failed}
            failed_files += [f for f in committed if f.key in broken]
            committed = [f for f in committed if f.key not in broken]
        failed: set[int] = set()
        for file in failed_files:
            failed.update(file.messages)
        for file in failed_files:
            error = f"{type(file.error).__name__}: {file.error}"
            result.error = result.error or error
            p.metrics.incr("write_failures")
            log.error("batch %d: %s failed for good, releasing its %d messages for "
                      "redelivery: %s", result.batch_id, p.sink.url(file.key),
                      file.message_count, error)
        if failed and committed:
            # rows of a nacked message already committed in another file: written again on
            # redelivery (docs/guarantees.md, "A file that fails")
            again = sum(1 for f in committed for src in f.sources if src in failed)
            result.possible_duplicate_rows = again
            p.metrics.incr("possible_duplicate_rows", again)
        done = time.monotonic()
        for file in committed:
            self._written(file, done - file.started, result)
        return failed

    def _retrying(self) -> dict[str, Any]:
        p = self.pipeline
        return {"retry": p.settings.write_retry, "abort": p.abort_event,
                "on_retry": lambda: p.metrics.incr("write_retries"), "gate": self.gate}

    def _manifest(self, file: PendingFile, batch: Sequence[Message]) -> PendingFile:
        """``KEY.manifest.json``: the source message ids of every row in a committed file."""
        body = json.dumps({"file": file.key,
                           "message_ids": [batch[i].id for i in file.messages]}).encode()
        return PendingFile(file.key + MANIFEST_SUFFIX, "application/json", {},
                           lambda stream: stream.write(body), 0, file.messages)

    def _written(self, file: PendingFile, seconds: float, result: FlushResult | None) -> None:
        p = self.pipeline
        rows, nbytes, url = file.rows, file.bytes, p.sink.url(file.key)
        self._bytes_per_row = (nbytes / rows) if not self._bytes_per_row else (
            0.7 * self._bytes_per_row + 0.3 * nbytes / rows)
        count = file.message_count
        info = FileResult(file.key, url, rows, nbytes, count, seconds)
        if result is not None:
            result.files.append(info)
        p.files.append(info)
        p.metrics.incr("files_written")
        p.metrics.incr("rows_written", rows)
        p.metrics.incr("bytes_written", nbytes)
        p.metrics.incr("messages_written", count)
        log.info("wrote %s", url, extra={"event": "file_written", "url": url, "rows": rows,
                 "bytes": nbytes, "messages": count,
                 "duration": round(seconds, 4)})

    # ---------------------------------------------------------------- settle

    def _route_rejected(
        self, rejections: list[Rejection], result: FlushResult, worker: int
    ) -> None:
        p = self.pipeline
        messages = [r.message for r in rejections]
        result.rejected = len(rejections)
        p.metrics.incr("rejected", len(rejections))
        for r in rejections[:5]:  # once per message: a redelivery rejected again logs at DEBUG
            if p.poison.is_poison(r.message):
                continue  # a poison message is logged once, by the guard
            seen = p.poison.seen(r.message.id)
            log.log(logging.DEBUG if seen else logging.WARNING, "rejected message %s%s: %s",
                    r.message.id, " again" if seen else "", reason_summary(r.reason))
            log.debug("rejected message %s: %s", r.message.id, r.reason)
        if p.error_sink is None:
            again, poison, new = p.poison.sort(rejections)
            result.nacked += self.release(again)
            for delay in sorted({d for _, d in poison}):  # growing delays, never a hot loop
                result.nacked += self.release([m for m, d in poison if d == delay], delay)
            if new:
                p.metrics.incr("poisoned", new)
            p.call_hook("ingest_messages_rejected", rejections=rejections, destination="source")
            return
        try:
            self._write_errors(rejections, worker)
        except Exception as exc:  # noqa: BLE001 - error sink down: give them back, never ack
            log.error("error sink failed, releasing %d rejected messages: %s", len(messages), exc)
            p.poison.remember(messages)
            result.nacked += self.release(messages)
            p.call_hook("ingest_messages_rejected", rejections=rejections, destination="source")
            return
        p.metrics.incr("errors_written", len(rejections))
        p.call_hook("ingest_messages_rejected", rejections=rejections,
                    destination="error-sink")
        result.acked += self.ack(messages)  # written to the error sink, even if aborted since
        p.poison.settled(messages)

    def _write_errors(self, rejections: list[Rejection], worker: int) -> None:
        """One JSON-lines file of the rejected messages in the error sink; raises if it failed."""
        p = self.pipeline
        assert p.error_sink is not None
        sink = p.error_sink
        now = datetime.now(UTC)
        lines = b"".join(error_record(r, now, p.names.get("source", "")) for r in rejections)
        key = p.layout.error_key(now, worker)
        file = PendingFile(key, "application/x-ndjson", {"ingest-records": str(len(rejections))},
                           lambda stream: stream.write(lines), len(rejections))
        outcome = commit_set(sink, [file], **self._retrying())
        if outcome.failed:
            assert file.error is not None
            raise file.error
        log.info("wrote %d rejected messages to %s", len(rejections), sink.url(key))

    def ack(self, messages: Sequence[Message]) -> int:
        """Acknowledge with the ack retry policy; returns how many records were acked (a
        block counts its lines)."""
        if not messages:
            return 0
        p = self.pipeline
        pending = list(messages)

        def attempt() -> None:
            nonlocal pending
            try:
                p.source.ack(pending)
            except PartialAckError as exc:
                pending = exc.failed
                raise

        try:
            p.settings.ack_retry.call(
                attempt, what=f"ack of {len(messages)} messages",
                on_retry=lambda n, exc: p.metrics.incr("ack_retries"))
        except Exception as exc:  # noqa: BLE001
            p.metrics.incr("ack_failures", len(pending))
            log.error("could not acknowledge %d messages (they will be delivered again, "
                      "possible duplicates): %s", len(pending), exc)
            acked = count_records(messages) - count_records(pending)
            # stop holding them: a source that keeps leases alive would hide them forever
            self.release(pending)
        else:
            acked = count_records(messages)
        p.metrics.incr("acked", acked)
        p.metrics.progress()
        return acked

    def release(self, messages: Sequence[Message], delay: float | None = None) -> int:
        """Give messages back to the source (nack) so they are delivered again."""
        if not messages:
            return 0
        p = self.pipeline
        try:
            p.source.nack(messages, delay)
        except Exception as exc:  # noqa: BLE001 - they come back when their lease lapses anyway
            log.warning("nack of %d messages failed (they return when their lease lapses): %s",
                        len(messages), exc)
        count = count_records(messages)
        p.metrics.incr("nacked", count)
        return count


_BODY = attrgetter("body")


def total_size(messages: Sequence[Message]) -> int:
    """Bytes of the bodies (C-level map: this runs on every receive and every flush)."""
    return sum(map(len, map(_BODY, messages)))


def _as_binary(stream: CountingStream) -> BinaryIO:
    return stream  # type: ignore[return-value]  # duck-typed writable


def error_record(rejection: Rejection, now: datetime, source: str = "") -> bytes:
    """One JSON line for the error sink: raw body (text, or base64 when not UTF-8) and reason."""
    message = rejection.message
    record: dict[str, Any] = {
        "time": now.isoformat(),
        "source": source,
        "message_id": message.id,
        "reason": rejection.reason,
        "attributes": _jsonable(message.attributes),
    }
    try:
        record["body"] = message.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body"] = None
        record["body_base64"] = b64encode(message.body).decode("ascii")
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, bytes):
        return b64encode(value).decode("ascii")
    return str(value)


def writer_version() -> str:
    """``parquet-ingestor X.Y.Z``: the ``ingest.writer`` of files and commit sets."""
    from . import __version__

    return f"parquet-ingestor {__version__}"
