"""Commit: a batch's rows to files, files to the sink, and only then ack (or nack).

A flush settles every message of its batch exactly one way: written then acked; rejected to the
error sink then acked; or nacked so the source delivers it again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from base64 import b64encode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, BinaryIO

from .batcher import Batch
from .errors import Aborted, PartialAckError
from .gcpause import gc_paused
from .interfaces import Frame
from .layout import without
from .logs import reason_summary
from .message import Message, Rejection

if TYPE_CHECKING:
    from .runner import Pipeline

log = logging.getLogger("parquet_ingestor")


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
    """How one batch was settled; observers get it through ``ingest_batch_flushed``."""

    batch_id: int
    messages: int
    input_bytes: int
    files: list[FileResult] = field(default_factory=list)
    rejected: int = 0
    acked: int = 0
    nacked: int = 0
    seconds: float = 0.0
    error: str | None = None

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

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._abort.is_set():
            raise Aborted("aborted during write")
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


class Committer:
    """Settles batches for a pipeline: transform, decode, lay out, write, then ack or nack.

    Threads: ``flush`` runs on the flush workers, concurrently; ``ack``/``release`` also on
    the receive loop (releasing on abort).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self._batch_ids = iter(range(1, 1 << 62))
        self._bytes_per_row = 0.0

    def flush(self, batch: Sequence[Message], worker: int = 0) -> FlushResult:
        """Settle one batch."""
        p = self.pipeline
        started = time.monotonic()
        now = datetime.now(UTC)
        nbytes = batch.nbytes if isinstance(batch, Batch) else total_size(batch)
        result = FlushResult(next(self._batch_ids), len(batch), nbytes)
        rejected: dict[int, str] = {}
        try:
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
            groups = p.layout.partition(decoded.frame, rejected, now)
            for when, values, frame in groups:
                if rejected:
                    frame = without(frame, rejected)
                if len(frame):
                    self._write_group(frame, when, values, worker, batch, result)
        except Aborted:
            result.error = "aborted"
            self.release(batch)
            return self._finish(result, started)
        except Exception as exc:  # noqa: BLE001 - retries exhausted or a component failed
            result.error = f"{type(exc).__name__}: {exc}"
            p.metrics.incr("write_failures")
            log.error("batch %d: write failed, releasing %d messages for redelivery: %s",
                      result.batch_id, len(batch), result.error)
            result.nacked = self.release(batch)
            return self._finish(result, started)

        done = [m for i, m in enumerate(batch) if i not in rejected] if rejected else list(batch)
        if rejected:
            self._route_rejected([Rejection(batch[i], r) for i, r in sorted(rejected.items())],
                                 result, worker)
        if not p.aborted:
            result.acked += self.ack(done)
        return self._finish(result, started)

    def _finish(self, result: FlushResult, started: float) -> FlushResult:
        p = self.pipeline
        result.seconds = time.monotonic() - started
        p.metrics.incr("batches")
        p.metrics.observe_flush(result.seconds)
        p.metrics.add_in_flight(-result.messages, -result.input_bytes)
        p.call_hook("ingest_batch_flushed", result=result)
        return result

    # ---------------------------------------------------------------- files

    def _write_group(
        self, frame: Frame, when: datetime, values: dict[str, Any], worker: int,
        batch: Sequence[Message], result: FlushResult,
    ) -> None:
        rows = len(frame)
        per_row = self._bytes_per_row or (result.input_bytes / max(1, rows)) / 2
        step = self.pipeline.layout.split(rows, per_row)
        for start in range(0, rows, step):
            part = frame if step >= rows else frame.slice(start, min(rows, start + step))
            info = self._write_file(part, when, values, worker, batch)
            result.files.append(info)

    def _write_file(
        self, frame: Frame, when: datetime, values: dict[str, Any], worker: int,
        batch: Sequence[Message],
    ) -> FileResult:
        p = self.pipeline
        started = time.monotonic()
        key = p.layout.key(when, p.encoder.extension, values, worker)
        message_indices = sorted(set(frame.sources))
        rows = len(frame)
        object_meta = {"ingest-records": str(rows), "ingest-messages": str(len(message_indices))}
        file_meta = {
            "ingest.records": str(rows),
            "ingest.messages": str(len(message_indices)),
            "ingest.partition_time": when.isoformat(),
            "ingest.writer": f"parquet-ingestor {_version()}",
        }
        time_field = p.settings.event_time_field
        if time_field:
            span = frame.time_range(time_field)
            if span:
                file_meta["ingest.min_event_time"] = span[0].isoformat()
                file_meta["ingest.max_event_time"] = span[1].isoformat()
        url = p.sink.url(key)

        def attempt() -> int:
            writer = p.sink.open(key, p.encoder.content_type, object_meta)
            stream = CountingStream(writer, p.abort_event)
            try:
                file_writer = p.encoder.open(_as_binary(stream), frame)
                file_writer.write(frame)
                file_writer.close(file_meta)
                writer.commit()
            except BaseException:
                try:
                    writer.abort()
                except Exception:  # noqa: BLE001
                    log.exception("abort of %s failed", url)
                raise
            return stream.count

        nbytes = p.settings.write_retry.call(
            attempt, what=f"write {url}", abort=p.abort_event,
            on_retry=lambda n, exc: p.metrics.incr("write_retries"),
        )
        if p.settings.manifest:
            self._write_manifest(key, [batch[i].id for i in message_indices])
        seconds = time.monotonic() - started
        self._bytes_per_row = (nbytes / rows) if not self._bytes_per_row else (
            0.7 * self._bytes_per_row + 0.3 * nbytes / rows)
        info = FileResult(key, url, rows, nbytes, len(message_indices), seconds)
        p.files.append(info)
        p.metrics.incr("files_written")
        p.metrics.incr("rows_written", rows)
        p.metrics.incr("bytes_written", nbytes)
        p.metrics.incr("messages_written", len(message_indices))
        log.info("wrote %s", url, extra={"event": "file_written", "url": url, "rows": rows,
                 "bytes": nbytes, "messages": len(message_indices),
                 "duration": round(seconds, 4)})
        return info

    def _write_manifest(self, key: str, message_ids: list[str]) -> None:
        p = self.pipeline
        body = json.dumps({"file": key, "message_ids": message_ids}).encode()
        manifest_key = key + ".manifest.json"

        def attempt() -> None:
            writer = p.sink.open(manifest_key, "application/json", {})
            try:
                writer.write(body)
                writer.commit()
            except BaseException:
                writer.abort()
                raise

        p.settings.write_retry.call(attempt, what=f"write {manifest_key}", abort=p.abort_event)

    # ---------------------------------------------------------------- settle

    def _route_rejected(
        self, rejections: list[Rejection], result: FlushResult, worker: int
    ) -> None:
        p = self.pipeline
        messages = [r.message for r in rejections]
        result.rejected = len(rejections)
        p.metrics.incr("rejected", len(rejections))
        for r in rejections[:5]:
            log.warning("rejected message %s: %s", r.message.id, reason_summary(r.reason))
            log.debug("rejected message %s: %s", r.message.id, r.reason)
        if p.error_sink is None:
            result.nacked += self.release(messages)
            p.call_hook("ingest_messages_rejected", rejections=rejections, destination="source")
            return
        try:
            self._write_errors(rejections, worker)
        except Exception as exc:  # noqa: BLE001 - error sink down: give them back, never ack
            log.error("error sink failed, releasing %d rejected messages: %s", len(messages), exc)
            result.nacked += self.release(messages)
            p.call_hook("ingest_messages_rejected", rejections=rejections, destination="source")
            return
        p.metrics.incr("errors_written", len(rejections))
        p.call_hook("ingest_messages_rejected", rejections=rejections,
                    destination="error-sink")
        if not p.aborted:
            result.acked += self.ack(messages)

    def _write_errors(self, rejections: list[Rejection], worker: int) -> None:
        p = self.pipeline
        assert p.error_sink is not None
        sink = p.error_sink
        now = datetime.now(UTC)
        lines = b"".join(error_record(r, now, p.names.get("source", "")) for r in rejections)
        key = p.layout.error_key(now, worker)

        def attempt() -> None:
            writer = sink.open(key, "application/x-ndjson",
                               {"ingest-records": str(len(rejections))})
            try:
                writer.write(lines)
                writer.commit()
            except BaseException:
                writer.abort()
                raise

        p.settings.write_retry.call(
            attempt, what=f"write {sink.url(key)}", abort=p.abort_event,
            on_retry=lambda n, exc: p.metrics.incr("write_retries"))
        log.info("wrote %d rejected messages to %s", len(rejections), sink.url(key))

    def ack(self, messages: Sequence[Message]) -> int:
        """Acknowledge with the ack retry policy; returns how many were acked."""
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
            acked = len(messages) - len(pending)
            # stop holding them: a source that keeps leases alive would hide them forever
            self.release(pending)
        else:
            acked = len(messages)
        p.metrics.incr("acked", acked)
        p.metrics.progress()
        return acked

    def release(self, messages: Sequence[Message]) -> int:
        """Give messages back to the source (nack) so they are delivered again."""
        if not messages:
            return 0
        p = self.pipeline
        try:
            p.source.nack(messages)
        except Exception as exc:  # noqa: BLE001 - they come back when their lease lapses anyway
            log.warning("nack of %d messages failed (they return when their lease lapses): %s",
                        len(messages), exc)
        p.metrics.incr("nacked", len(messages))
        return len(messages)


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


def _version() -> str:
    from . import __version__

    return __version__
