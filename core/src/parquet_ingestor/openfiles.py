"""Files that outlive a batch (``--target-file-size`` above 0).

Each partition has at most one open file; successive flushes append their rows to it, streaming
into the sink's open upload. A file commits when it reaches ``target_file_size`` encoded bytes,
when it is ``max_file_age`` old, when opening another would pass ``max_open_files`` (the least
recently written commits first), before its oldest message outlives the source's hold budget,
when a frame does not fit it (the encoder's schema grew since it opened: ``FrameWriter.fits``),
and at the end of the run. A message is acknowledged once every file holding one of its rows
has committed; if one of them fails, the message is nacked (its rows in files that did commit
stay: counted as ``possible_duplicate_rows``). A failed file cannot be written again (its rows
came from several batches), so its messages are nacked at once.

Threads: ``append`` runs on the flush workers, concurrently (one lock per file, one for the
table); ``due`` on the receive loop; ``close`` wherever a file is due (a flush worker, or the
runner at the end).
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import eventtime
from .errors import Aborted, PartialCommitError
from .interfaces import Frame, FrameWriter, SinkTransaction, SinkWriter, begin
from .layout import Partition
from .message import count_records

if TYPE_CHECKING:
    from .commit import Committer, CountingStream
    from .message import Message

log = logging.getLogger("parquet_ingestor")

#: Share of the source's hold budget after which a file holding its messages commits.
HOLD_MARGIN = 0.9


class Held:
    """The messages of one batch whose rows wait in open files; settled (acked, or nacked for
    those in a failed file) when the last of those files is done and the flush has sealed it."""

    def __init__(self, batch: Sequence[Message], rejected: set[int], received: float,
                 settle: Callable[[Held], None]) -> None:
        self.batch = batch
        self.nbytes = 0  # bytes counted against max_held_bytes (bodies, or ~200 B a message)
        self.rejected = rejected
        self.received = received
        self.failed: set[int] = set()
        self.committed_sources: list[Sequence[int]] = []
        self._files = 0
        self._sealed = False
        self._settled = False
        self._lock = threading.Lock()
        self._settle = settle

    def hold(self) -> None:
        with self._lock:
            self._files += 1

    def done(self, sources: Sequence[int], committed: bool) -> None:
        """One file holding rows (``sources``) of this batch committed, or failed."""
        with self._lock:
            self._files -= 1
            if committed:
                self.committed_sources.append(sources)
            else:
                self.failed.update(sources)
            ready = self._ready()
        if ready:
            self._settle(self)

    def seal(self) -> None:
        """The flush has handed out all its rows: settle once no file holds any."""
        with self._lock:
            self._sealed = True
            ready = self._ready()
        if ready:
            self._settle(self)

    def cancel(self) -> None:
        """The flush failed and released the whole batch itself: never settle it again."""
        with self._lock:
            self._settled = True

    def _ready(self) -> bool:
        if self._sealed and self._files == 0 and not self._settled:
            self._settled = True
            return True
        return False


@dataclass(eq=False)
class OpenFile:
    """One open file of a partition, with the rows of each batch written into it."""

    key: str
    partition: tuple[Any, ...]
    when: datetime
    transaction: SinkTransaction
    writer: SinkWriter
    stream: CountingStream
    opened: float
    frame_writer: FrameWriter | None = None
    rows: int = 0
    # per batch: its rows' message indices, 4 bytes a row (a file may hold millions)
    sources: dict[Held, array[int]] = field(default_factory=dict)
    oldest: float = float("inf")
    last_write: float = 0.0
    span: list[datetime] = field(default_factory=list)
    closed: bool = False
    scheduled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class OpenFiles:
    """The open files of a pipeline, one per partition (see the module docstring)."""

    def __init__(self, committer: Committer) -> None:
        self.committer = committer
        self._files: OrderedDict[tuple[Any, ...], OpenFile] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    # ---------------------------------------------------------------- writing

    def append(self, part: Partition, frame: Frame, held: Held, worker: int,
               per_row_guess: float) -> None:
        """Append ``frame`` (rows of ``part``) to the partition's open file, opening one when
        needed and committing files that reach the target size or make room. Rows go in
        chunks that fit the target, by the encoded bytes per row seen so far (before the first
        commit: ``per_row_guess``)."""
        settings = self.committer.pipeline.settings
        target = settings.target_file_size
        rows, start = len(frame), 0
        # the partition as the key template sees it: processing time at the template's grain
        ident = (eventtime.floor(part.when, self.committer.pipeline.layout.keys.time_unit),
                 tuple(part.values.items()))
        while start < rows:
            try:
                file, evicted = self._file_for(ident, part, worker)
            except Aborted:
                raise
            except Exception as exc:  # noqa: BLE001 - the sink refused to open this file
                rest = frame.slice(start, rows).sources
                p = self.committer.pipeline
                p.metrics.incr("write_failures")
                log.error("opening a file for %s failed, releasing its %d rows' messages for "
                          "redelivery: %s: %s", part.values or part.when.isoformat(),
                          len(set(rest)), type(exc).__name__, exc)
                held.hold()
                held.done(rest, committed=False)
                return
            if evicted is not None:
                self.close([evicted], "max-open-files")
            if file is None:
                continue
            with file.lock:
                stale = file.frame_writer is not None and not file.closed and \
                    not _fits(file.frame_writer, frame)
            if stale:  # opened before the schema grew: commit it, the rows go to a new one
                self.close([file], "schema changed")
                continue
            with file.lock:
                if file.closed:
                    continue  # committed by another thread meanwhile: open a new one
                per_row = self.committer.bytes_per_row() or per_row_guess or 1.0
                room = max(1, int((target - _size(file, per_row)) / per_row))
                n = min(rows - start, room)
                chunk = frame if n == rows else frame.slice(start, start + n)
                if held not in file.sources:
                    held.hold()
                    file.sources[held] = array("i")
                file.sources[held].extend(chunk.sources)
                file.oldest = min(file.oldest, held.received)
                file.last_write = time.monotonic()
                start += n
                try:
                    if file.frame_writer is None:
                        file.frame_writer = self.committer.pipeline.encoder.open(
                            _binary(file.stream), chunk)
                    file.frame_writer.write(chunk)
                except Aborted:
                    raise
                except Exception as exc:  # noqa: BLE001 - this file fails, the others go on
                    self._fail(file, exc)
                    continue
                file.rows += n
                self._note_span(file, chunk, part.span if chunk is part.frame else None)
                full = _size(file, per_row) >= target
            if full:
                self.close([file], "target size")

    def _file_for(
        self, ident: tuple[Any, ...], part: Partition, worker: int
    ) -> tuple[OpenFile | None, OpenFile | None]:
        """The open file of a partition (moved to most recently used), or a new one; or, when
        opening one would pass ``max_open_files``, the least recently written file to close
        first (then ask again)."""
        with self._lock:
            file = self._files.get(ident)
            if file is not None:
                self._files.move_to_end(ident)
                return file, None
            if len(self._files) >= self.committer.pipeline.settings.max_open_files:
                _, evicted = self._files.popitem(last=False)
                return None, evicted
            file = self._open(ident, part, worker)
            self._files[ident] = file
        return file, None

    def _open(self, ident: tuple[Any, ...], part: Partition, worker: int) -> OpenFile:
        from .commit import CountingStream

        p = self.committer.pipeline
        key = p.layout.key(part.when, p.encoder.extension, part.values, worker)
        transaction = begin(p.sink)
        writer = transaction.open(key, p.encoder.content_type, {})
        return OpenFile(key, ident, part.when, transaction, writer,
                        CountingStream(writer, p.abort_event), time.monotonic())

    def _note_span(self, file: OpenFile, chunk: Frame,
                   known: tuple[datetime, datetime] | None) -> None:
        """Widen the file's event-time span by the chunk's (``known`` when the chunk is a
        whole partition: the layout read it already)."""
        time_field = self.committer.pipeline.settings.event_time_field
        if not time_field:
            return
        span = known if known is not None else eventtime.span(chunk, time_field)
        if span:
            file.span = [min(file.span[0], span[0]), max(file.span[1], span[1])] if file.span \
                else [span[0], span[1]]

    # ---------------------------------------------------------------- closing

    def due(self, now: float, hold_budget: float | None) -> list[OpenFile]:
        """Files to commit now because of their age or their messages' hold budget; each is
        returned once (marked scheduled)."""
        age = self.committer.pipeline.settings.file_age
        out = []
        with self._lock:
            for file in self._files.values():
                if file.scheduled:
                    continue
                old = bool(age) and now - file.opened >= age
                held_long = (hold_budget is not None
                             and now - file.oldest >= hold_budget * HOLD_MARGIN)
                if old or held_long:
                    file.scheduled = True
                    out.append(file)
        return out

    def closable(self, peek: bool = False) -> list[OpenFile]:
        """The largest open file not yet scheduled to close (none: an empty list): what to
        commit early to free the messages it holds. Marked scheduled unless ``peek``, so it
        is returned once."""
        with self._lock:
            files = [f for f in self._files.values() if not f.scheduled]
            if not files:
                return []
            largest = max(files, key=lambda f: f.stream.count)
            if not peek:
                largest.scheduled = True
        return [largest]

    def all(self) -> list[OpenFile]:
        with self._lock:
            return list(self._files.values())

    def usage(self) -> tuple[int, int]:
        """Open files and the encoded bytes written into them (the metrics' gauges)."""
        with self._lock:
            return len(self._files), sum(file.stream.count for file in self._files.values())

    def oldest(self) -> float | None:
        """When the oldest message with a row in an open file was received (None: none)."""
        with self._lock:
            return min((f.oldest for f in self._files.values() if f.sources), default=None)

    def close(self, files: Sequence[OpenFile], why: str) -> None:
        """Finish and commit ``files``; then settle the batches that were waiting on them.

        Files closing together are finished first, then committed as few sets as the sink
        allows (its transactions' optional ``join``): one snapshot for a table sink."""
        finished: list[OpenFile] = []
        for file in files:
            with file.lock:
                if file.closed:
                    continue
                self._forget(file)
                file.closed = True
                try:
                    self._finish(file)
                except Aborted:
                    self._failed([file], None)
                    self._failed(finished, None)
                    raise
                except Exception as exc:  # noqa: BLE001 - this file fails, the others go on
                    self._failed([file], exc)
                    continue
            finished.append(file)
        for group in _joined(finished):
            try:
                self._commit(group)
            except Aborted:
                self._failed(group, None)
                raise
            except Exception as exc:  # noqa: BLE001 - this set fails, the others go on
                self._failed(group, exc)
                continue
            for file in group:
                log.debug("closed %s (%s)", file.key, why)
                self._notify(file, committed=True)

    def _failed(self, files: Sequence[OpenFile], exc: BaseException | None) -> None:
        """Drop ``files`` (none becomes visible) and nack their messages."""
        for file in files:
            _drop(file)
            if exc is not None:
                self._report(file, exc)
            self._notify(file, committed=False)

    def abort_all(self) -> None:
        """Drop every open file (run aborted): nothing becomes visible; messages are nacked."""
        for file in self.all():
            with file.lock:
                if file.closed:
                    continue
                self._forget(file)
                file.closed = True
                _drop(file)
            self._notify(file, committed=False)

    def _finish(self, file: OpenFile) -> None:
        """Write the file's footer and stage it in its set (not visible yet)."""
        from .commit import writer_version

        meta = {
            "ingest.records": str(file.rows),
            "ingest.messages": str(_messages(file)),
            "ingest.partition_time": file.when.isoformat(),
            "ingest.writer": writer_version(),
        }
        if file.span:
            meta["ingest.min_event_time"] = file.span[0].isoformat()
            meta["ingest.max_event_time"] = file.span[1].isoformat()
        if file.frame_writer is not None:
            file.frame_writer.close(meta)
        file.writer.commit()

    def _commit(self, group: Sequence[OpenFile]) -> None:
        """Commit the set of ``group[0]``, which holds the staged files of the whole group."""
        from .commit import writer_version

        p = self.committer.pipeline
        summary = {"ingest.commit-id": _new_id(), "ingest.files": str(len(group)),
                   "ingest.records": str(sum(file.rows for file in group)),
                   "ingest.messages": str(sum(_messages(file) for file in group)),
                   "ingest.writer": writer_version()}
        try:
            group[0].transaction.commit(summary)
        except PartialCommitError as exc:
            raise next(iter(exc.errors.values())) from None
        if p.aborted:
            raise Aborted("aborted")

    def _fail(self, file: OpenFile, exc: BaseException) -> None:
        """A write into ``file`` failed (called with its lock held): drop it."""
        self._forget(file)
        file.closed = True
        _drop(file)
        self._report(file, exc)
        self._notify(file, committed=False)

    def _forget(self, file: OpenFile) -> None:
        with self._lock:
            if self._files.get(file.partition) is file:
                del self._files[file.partition]

    def _report(self, file: OpenFile, exc: BaseException) -> None:
        p = self.committer.pipeline
        p.metrics.incr("write_failures")
        messages = _messages(file)
        log.error("%s failed, releasing its %d messages for redelivery: %s: %s",
                  p.sink.url(file.key), messages, type(exc).__name__, exc)

    def _notify(self, file: OpenFile, committed: bool) -> None:
        if committed:
            self.committer.written_open_file(file)
        for held, sources in file.sources.items():
            held.done(sources, committed)


def _messages(file: OpenFile) -> int:
    """Messages with rows in ``file``, a block counting its lines (as ``received``)."""
    return sum(count_records(held.batch[i] for i in set(sources))
               for held, sources in file.sources.items())


def _joined(files: Sequence[OpenFile]) -> list[list[OpenFile]]:
    """``files`` (all staged) in as few commit sets as their transactions' ``join`` allows;
    the first file of each group holds the group's set."""
    groups: list[list[OpenFile]] = []
    for file in files:
        lead = groups[-1][0] if groups else None
        join = getattr(lead.transaction, "join", None) if lead is not None else None
        if lead is not None and callable(join) and join(file.transaction) is True:
            groups[-1].append(file)
        else:
            groups.append([file])
    return groups


def _size(file: OpenFile, per_row: float) -> float:
    """The file's encoded size: bytes written, plus the rows its writer still buffers (a
    row group not yet written) at ``per_row`` bytes each."""
    return file.stream.count + getattr(file.frame_writer, "buffered_rows", 0) * per_row


def _drop(file: OpenFile) -> None:
    """Abort a file that will not commit: its writer (open or staged), then its set."""
    _quietly(file.writer.abort)
    _quietly(file.transaction.abort)


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 - cleanup must not hide the error being handled
        log.exception("cleanup failed")


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex


def _binary(stream: Any) -> Any:
    return stream


def _fits(writer: FrameWriter, frame: Frame) -> bool:
    """Whether ``frame`` can go into ``writer``'s file (its optional ``fits``; default yes)."""
    fits = getattr(writer, "fits", None)
    return bool(fits(frame)) if callable(fits) else True
