"""The pipeline: receive -> batch -> transform -> encode -> write -> acknowledge.

One receive loop (the caller's thread) fills the :class:`~parquet_ingestor.batcher.Batcher`;
full batches go through a bounded queue to ``workers`` flush threads, so when writes are slow,
receiving pauses (backpressure) and memory stays bounded by batch size x (2 x workers + 1).
A flush settles every message of its batch exactly one way: written then acked; rejected to the
error sink then acked; or nacked so the source delivers it again.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import queue
import sys
import threading
import time
from base64 import b64encode
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, BinaryIO, Literal

from .batcher import Batch, Batcher, BatchLimits
from .errors import Aborted, ConfigError, PartialAckError
from .gcpause import gc_paused
from .interfaces import Encoder, Frame, RunContext, Sink, Source, Transformer
from .keys import DEFAULT_TEMPLATE, KeyTemplate
from .logs import reason_summary
from .message import Message, Rejection
from .metrics import Metrics
from .records import truncate
from .retry import RetryPolicy

log = logging.getLogger("parquet_ingestor")

#: GIL switch interval while a pipeline runs (CPython's default is 5 ms). Flush threads that
#: hold the GIL for Python work (transformers, dicts -> Arrow) hand it back and forth less, and
#: each keeps its batch in cache: +10-20% records per CPU-second for a per-message transformer,
#: +20% for the SQS source (docs/performance.md). I/O waits still release the GIL at once.
SWITCH_INTERVAL = 0.02

OVERFLOW = "__overflow__"


@dataclass(frozen=True)
class PipelineSettings:
    """Everything about a run that is not a component. Defaults follow Firehose where it has one."""

    batch: BatchLimits = field(default_factory=BatchLimits)
    workers: int = 4
    key_template: str = DEFAULT_TEMPLATE
    error_key_template: str = "%Y/%m/%d/%H/{unix_ns}-{random}.{ext}"
    exit_when_idle: float | None = None
    write_retry: RetryPolicy = field(default_factory=RetryPolicy)
    ack_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=5, base_delay=0.1))
    partition_by: str = "processing"  # or "event:FIELD"
    on_missing_time: Literal["processing", "reject"] = "processing"
    max_open_partitions: int = 64
    on_partition_overflow: Literal["processing", "reject"] = "processing"
    target_file_size: int = 0  # bytes of encoded output per file; 0 = one file per partition
    manifest: bool = False
    receive_max: int = 1000
    poll_interval: float = 0.5

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.partition_by != "processing" and not (
            self.partition_by.startswith("event:") and len(self.partition_by) > 6
        ):
            raise ConfigError("--partition-by must be 'processing' or 'event:FIELD'")
        if self.max_open_partitions < 1:
            raise ConfigError("--max-open-partitions must be at least 1")
        KeyTemplate(self.key_template)  # validates
        KeyTemplate(self.error_key_template)

    @property
    def event_time_field(self) -> str | None:
        return self.partition_by[6:] if self.partition_by.startswith("event:") else None


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


class Pipeline:
    """A run of source -> transformer -> encoder -> sink. Build it, then ``run()``; ``stop()`` from
    another thread (or a signal handler) drains cleanly, ``abort()`` stops at once."""

    def __init__(
        self,
        source: Source,
        sink: Sink,
        encoder: Encoder,
        transformer: Transformer | None = None,
        settings: PipelineSettings | None = None,
        *,
        error_sink: Sink | None = None,
        hooks: Any = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        if transformer is None:
            from .builtins.json_transformer import JsonTransformer

            transformer = JsonTransformer()
        self.source = source
        self.sink = sink
        self.encoder = encoder
        self.transformer = transformer
        self.error_sink = error_sink
        self.settings = settings or PipelineSettings()
        self.names = dict(names or {})
        self.metrics = Metrics()
        self.files: list[FileResult] = []
        self._hooks = hooks
        self._keys = KeyTemplate(self.settings.key_template)
        self._error_keys = KeyTemplate(self.settings.error_key_template)
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._queue: queue.Queue[list[Message] | None] = queue.Queue(maxsize=self.settings.workers)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._batch_ids = iter(range(1, 1 << 62))
        self._bytes_per_row = 0.0
        self.stopped_reason = ""

    # ---------------------------------------------------------------- control

    def stop(self) -> None:
        """Stop receiving; flush and acknowledge everything buffered, then return from ``run``."""
        self._stop.set()

    def abort(self) -> None:
        """Stop now: in-flight writes are abandoned and nothing unwritten is acknowledged."""
        self._abort.set()
        self._stop.set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def _call_hook(self, name: str, **kwargs: Any) -> None:
        if self._hooks is None:
            return
        try:
            getattr(self._hooks, name)(pipeline=self, **kwargs)
        except Exception:  # noqa: BLE001 - an observer must never break the run
            log.exception("observer hook %s failed", name)

    # ---------------------------------------------------------------- run

    def run(self) -> Metrics:
        """Run until the source is drained, idle for ``exit_when_idle``, or ``stop()``."""
        self._start_components(RunContext(self.settings.workers, self.metrics, self.settings))
        threads = [
            threading.Thread(target=self._worker, args=(i,), name=f"flush-{i}", daemon=True)
            for i in range(self.settings.workers)
        ]
        for thread in threads:
            thread.start()
        old_threshold = gc.get_threshold()
        gc.set_threshold(max(old_threshold[0], 50_000), old_threshold[1], old_threshold[2])
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(max(old_switch, SWITCH_INTERVAL))
        self._call_hook("ingest_pipeline_started")
        batcher = Batcher(self.settings.batch)
        try:
            self._receive_loop(batcher)
        finally:
            if not self._abort.is_set() and len(batcher):
                self._submit(batcher.take())
            elif len(batcher):
                self._release(batcher.take())
            for _ in threads:
                self._put(None, force=True)
            self._join(threads)
            gc.set_threshold(*old_threshold)
            sys.setswitchinterval(old_switch)
            self._close_components()
            self._call_hook("ingest_pipeline_stopped", metrics=self.metrics)
        return self.metrics

    def validate(self) -> None:
        """Start the sinks, encoder and transformer (their checks: the bucket exists...) and
        close everything, without starting the source: a source checks itself when it is built
        (the queue exists) and must not receive, which would count as a delivery.
        ``ingest --validate`` calls this."""
        context = RunContext(self.settings.workers, self.metrics, self.settings)
        try:
            self._start_components(context, source=False)
        finally:
            self._close_components()

    def _start_components(self, context: RunContext, source: bool = True) -> None:
        """Start sinks first and the source last, so a bad sink (missing bucket) fails the run
        before any message is received; if one fails, close what was already started."""
        started: list[Any] = []
        order = [self.error_sink, self.sink, self.encoder, self.transformer]
        try:
            for component in order + ([self.source] if source else []):
                start = getattr(component, "start", None)
                if callable(start):
                    start(context)
                started.append(component)
        except BaseException:
            for component in started:
                close = getattr(component, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:  # noqa: BLE001
                        log.exception("closing %s failed", type(component).__name__)
            raise

    def _join(self, threads: list[threading.Thread]) -> None:
        """Wait for the workers to drain; once aborted (even mid-wait) give them 2 s at most."""
        deadline: float | None = None
        for thread in threads:
            while thread.is_alive():
                if self._abort.is_set():
                    deadline = deadline or time.monotonic() + 2.0
                    if time.monotonic() >= deadline:
                        return
                thread.join(0.1)

    def _receive_loop(self, batcher: Batcher) -> None:
        settings = self.settings
        idle_since = time.monotonic()
        failures = 0
        while not self._stop.is_set():
            timeout = max(0.0, min(settings.poll_interval, batcher.time_left()))
            try:
                messages = self.source.receive(settings.receive_max, timeout)
                failures = 0
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - the source retries; we keep running
                failures += 1
                wait = settings.write_retry.delay(min(failures, 8))
                log.warning("receive failed (%d in a row), retrying in %.1fs: %s",
                            failures, wait, exc)
                self._stop.wait(wait)
                continue
            now = time.monotonic()
            if messages:
                idle_since = now
                sizes = list(map(len, map(_BODY, messages)))
                size = sum(sizes)
                self.metrics.incr("received", len(messages))
                self.metrics.incr("received_bytes", size)
                self.metrics.add_in_flight(len(messages), size)
                for batch in batcher.add(messages, sizes):
                    self._submit(batch)
            if batcher.due():
                self._submit(batcher.take())
            if not messages:
                if self.source.exhausted:
                    # in-flight batches may still give messages back (nack): drained only
                    # once nothing is buffered or being flushed and the source stays empty
                    if len(batcher):
                        self._submit(batcher.take())
                    elif self._idle() and self.source.exhausted:
                        self.stopped_reason = "drained"
                        return
                    else:
                        self._stop.wait(0.02)
                    continue
                idle = settings.exit_when_idle
                if idle is not None and now - idle_since >= idle and self._idle():
                    if len(batcher):
                        self._submit(batcher.take())
                        continue
                    self.stopped_reason = "idle"
                    return
        self.stopped_reason = "aborted" if self._abort.is_set() else "stopped"

    def _idle(self) -> bool:
        with self._busy_lock:
            return self._busy == 0 and self._queue.empty()

    def _submit(self, batch: list[Message]) -> None:
        if batch:
            with self._busy_lock:
                self._busy += 1
            if not self._put(batch):
                with self._busy_lock:
                    self._busy -= 1
                self._release(batch)

    def _put(self, item: list[Message] | None, force: bool = False) -> bool:
        """Block while the flush queue is full (backpressure); give up only on abort."""
        while True:
            if self._abort.is_set() and not force:
                return False
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                if force and self._abort.is_set():
                    with contextlib.suppress(queue.Empty):
                        dropped = self._queue.get_nowait()
                        if dropped:
                            self._release(dropped)

    def _close_components(self) -> None:
        for component in (self.source, self.sink, self.error_sink):
            if component is None:
                continue
            try:
                component.close()
            except Exception:  # noqa: BLE001
                log.exception("closing %s failed", type(component).__name__)

    # ---------------------------------------------------------------- flush

    def _worker(self, worker: int) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                if self._abort.is_set():
                    self._release(batch)
                else:
                    self.flush(batch, worker)
            except Exception:  # noqa: BLE001 - a bug must not kill the worker
                log.exception("flush failed unexpectedly; releasing %d messages", len(batch))
                self._release(batch)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def flush(self, batch: Sequence[Message], worker: int = 0) -> FlushResult:
        """Settle one batch; public so tests and embedders can drive a pipeline by hand."""
        started = time.monotonic()
        now = datetime.now(UTC)
        nbytes = batch.nbytes if isinstance(batch, Batch) else _total_size(batch)
        result = FlushResult(next(self._batch_ids), len(batch), nbytes)
        rejected: dict[int, str] = {}
        try:
            with gc_paused():
                transformed = self.transformer.transform(batch)
                if transformed.rejected:
                    index = {id(m): i for i, m in enumerate(batch)}
                    for rejection in transformed.rejected:
                        rejected.setdefault(index[id(rejection.message)], rejection.reason)
                decoded = self.encoder.decode(transformed.records)
                # free the records (maybe 100k dicts) by refcount before the collector is back,
                # so it never scans or promotes them
                del transformed
            for source_index, reason in decoded.rejected:
                rejected.setdefault(source_index, reason)
            groups = self._partition(decoded.frame, rejected, now)
            for when, values, frame in groups:
                if rejected:
                    frame = _without(frame, rejected)
                if len(frame):
                    self._write_group(frame, when, values, worker, batch, result)
        except Aborted:
            result.error = "aborted"
            self._release(batch)
            return self._finish(result, started)
        except Exception as exc:  # noqa: BLE001 - retries exhausted or a component failed
            result.error = f"{type(exc).__name__}: {exc}"
            self.metrics.incr("write_failures")
            log.error("batch %d: write failed, releasing %d messages for redelivery: %s",
                      result.batch_id, len(batch), result.error)
            result.nacked = self._release(batch)
            return self._finish(result, started)

        done = [m for i, m in enumerate(batch) if i not in rejected] if rejected else list(batch)
        if rejected:
            self._route_rejected([Rejection(batch[i], r) for i, r in sorted(rejected.items())],
                                 result, worker)
        if not self._abort.is_set():
            result.acked += self._ack(done)
        return self._finish(result, started)

    def _finish(self, result: FlushResult, started: float) -> FlushResult:
        result.seconds = time.monotonic() - started
        self.metrics.incr("batches")
        self.metrics.observe_flush(result.seconds)
        self.metrics.add_in_flight(-result.messages, -result.input_bytes)
        self._call_hook("ingest_batch_flushed", result=result)
        return result

    def _partition(
        self, frame: Frame, rejected: dict[int, str], now: datetime
    ) -> list[tuple[datetime, dict[str, Any], Frame]]:
        """Split a frame into (partition time, field values, rows) per output partition."""
        time_field = self.settings.event_time_field
        fields = self._keys.fields
        if not time_field and not fields:
            return [(now, {}, frame)]
        unit = self._keys.time_unit
        now_key = truncate(now, unit)
        assert now_key is not None
        groups: dict[tuple[datetime, tuple[Any, ...]], list[int]] = {}
        for (when, values), rows in frame.group_rows(time_field, unit, fields).items():
            if time_field and when is None and self.settings.on_missing_time == "reject":
                for row in rows:
                    rejected.setdefault(frame.sources[row],
                                        f"no usable event time in field '{time_field}'")
                continue
            groups.setdefault((when or now_key, tuple(values)), []).extend(rows)
        limit = self.settings.max_open_partitions
        if len(groups) > limit:
            ordered = sorted(groups.items(), key=lambda kv: len(kv[1]), reverse=True)
            reject = self.settings.on_partition_overflow == "reject"
            keep = limit if reject else limit - 1  # leave room for the overflow partition
            kept = dict(ordered[:keep])
            overflow_rows = [row for _, rows in ordered[keep:] for row in rows]
            if reject:
                for row in overflow_rows:
                    rejected.setdefault(frame.sources[row],
                                        f"more than {limit} partitions in one flush")
            else:
                log.warning("%d partitions in one flush; %d rows go to the overflow partition",
                            len(groups), len(overflow_rows))
                kept.setdefault((now_key, (OVERFLOW,) * len(fields)), []).extend(overflow_rows)
            groups = kept
        out: list[tuple[datetime, dict[str, Any], Frame]] = []
        for (when, values), rows in groups.items():
            subset = frame if len(rows) == len(frame) else frame.take(sorted(rows))
            out.append((when, dict(zip(fields, values, strict=True)), subset))
        return out

    def _write_group(
        self, frame: Frame, when: datetime, values: dict[str, Any], worker: int,
        batch: Sequence[Message], result: FlushResult,
    ) -> None:
        rows = len(frame)
        files = 1
        target = self.settings.target_file_size
        if target:
            per_row = self._bytes_per_row or (result.input_bytes / max(1, rows)) / 2
            files = max(1, math.ceil(per_row * rows / target))
        step = math.ceil(rows / files)
        for start in range(0, rows, step):
            part = frame if files == 1 else frame.slice(start, min(rows, start + step))
            info = self._write_file(part, when, values, worker, batch)
            result.files.append(info)

    def _write_file(
        self, frame: Frame, when: datetime, values: dict[str, Any], worker: int,
        batch: Sequence[Message],
    ) -> FileResult:
        started = time.monotonic()
        key = self._keys.render(when, self.encoder.extension, values, worker)
        message_indices = sorted(set(frame.sources))
        rows = len(frame)
        object_meta = {"ingest-records": str(rows), "ingest-messages": str(len(message_indices))}
        file_meta = {
            "ingest.records": str(rows),
            "ingest.messages": str(len(message_indices)),
            "ingest.partition_time": when.isoformat(),
            "ingest.writer": f"parquet-ingestor {_version()}",
        }
        time_field = self.settings.event_time_field
        if time_field:
            span = frame.time_range(time_field)
            if span:
                file_meta["ingest.min_event_time"] = span[0].isoformat()
                file_meta["ingest.max_event_time"] = span[1].isoformat()
        url = self.sink.url(key)

        def attempt() -> int:
            writer = self.sink.open(key, self.encoder.content_type, object_meta)
            stream = CountingStream(writer, self._abort)
            try:
                file_writer = self.encoder.open(_as_binary(stream), frame)
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

        nbytes = self.settings.write_retry.call(
            attempt, what=f"write {url}", abort=self._abort,
            on_retry=lambda n, exc: self.metrics.incr("write_retries"),
        )
        if self.settings.manifest:
            self._write_manifest(key, [batch[i].id for i in message_indices])
        seconds = time.monotonic() - started
        self._bytes_per_row = (nbytes / rows) if not self._bytes_per_row else (
            0.7 * self._bytes_per_row + 0.3 * nbytes / rows)
        info = FileResult(key, url, rows, nbytes, len(message_indices), seconds)
        self.files.append(info)
        self.metrics.incr("files_written")
        self.metrics.incr("rows_written", rows)
        self.metrics.incr("bytes_written", nbytes)
        self.metrics.incr("messages_written", len(message_indices))
        log.info("wrote %s", url, extra={"event": "file_written", "url": url, "rows": rows,
                 "bytes": nbytes, "messages": len(message_indices),
                 "duration": round(seconds, 4)})
        return info

    def _write_manifest(self, key: str, message_ids: list[str]) -> None:
        body = json.dumps({"file": key, "message_ids": message_ids}).encode()
        manifest_key = key + ".manifest.json"

        def attempt() -> None:
            writer = self.sink.open(manifest_key, "application/json", {})
            try:
                writer.write(body)
                writer.commit()
            except BaseException:
                writer.abort()
                raise

        self.settings.write_retry.call(attempt, what=f"write {manifest_key}", abort=self._abort)

    # ---------------------------------------------------------------- settle

    def _route_rejected(
        self, rejections: list[Rejection], result: FlushResult, worker: int
    ) -> None:
        messages = [r.message for r in rejections]
        result.rejected = len(rejections)
        self.metrics.incr("rejected", len(rejections))
        for r in rejections[:5]:
            log.warning("rejected message %s: %s", r.message.id, reason_summary(r.reason))
            log.debug("rejected message %s: %s", r.message.id, r.reason)
        if self.error_sink is None:
            result.nacked += self._release(messages)
            self._call_hook("ingest_messages_rejected", rejections=rejections,
                            destination="source")
            return
        try:
            self._write_errors(rejections, worker)
        except Exception as exc:  # noqa: BLE001 - error sink down: give them back, never ack
            log.error("error sink failed, releasing %d rejected messages: %s", len(messages), exc)
            result.nacked += self._release(messages)
            self._call_hook("ingest_messages_rejected", rejections=rejections,
                            destination="source")
            return
        self.metrics.incr("errors_written", len(rejections))
        self._call_hook("ingest_messages_rejected", rejections=rejections,
                        destination="error-sink")
        if not self._abort.is_set():
            result.acked += self._ack(messages)

    def _write_errors(self, rejections: list[Rejection], worker: int) -> None:
        assert self.error_sink is not None
        sink = self.error_sink
        now = datetime.now(UTC)
        lines = b"".join(error_record(r, now, self.names.get("source", "")) for r in rejections)
        key = self._error_keys.render(now, "jsonl", {}, worker)

        def attempt() -> None:
            writer = sink.open(key, "application/x-ndjson",
                               {"ingest-records": str(len(rejections))})
            try:
                writer.write(lines)
                writer.commit()
            except BaseException:
                writer.abort()
                raise

        self.settings.write_retry.call(
            attempt, what=f"write {sink.url(key)}", abort=self._abort,
            on_retry=lambda n, exc: self.metrics.incr("write_retries"))
        log.info("wrote %d rejected messages to %s", len(rejections), sink.url(key))

    def _ack(self, messages: Sequence[Message]) -> int:
        """Acknowledge with the ack retry policy; returns how many were acked."""
        if not messages:
            return 0
        pending = list(messages)

        def attempt() -> None:
            nonlocal pending
            try:
                self.source.ack(pending)
            except PartialAckError as exc:
                pending = exc.failed
                raise

        try:
            self.settings.ack_retry.call(
                attempt, what=f"ack of {len(messages)} messages",
                on_retry=lambda n, exc: self.metrics.incr("ack_retries"))
        except Exception as exc:  # noqa: BLE001
            self.metrics.incr("ack_failures", len(pending))
            log.error("could not acknowledge %d messages (they will be delivered again, "
                      "possible duplicates): %s", len(pending), exc)
            acked = len(messages) - len(pending)
            # stop holding them: a source that keeps leases alive would hide them forever
            self._release(pending)
        else:
            acked = len(messages)
        self.metrics.incr("acked", acked)
        self.metrics.progress()
        return acked

    def _release(self, messages: Sequence[Message]) -> int:
        """Give messages back to the source (nack) so they are delivered again."""
        if not messages:
            return 0
        try:
            self.source.nack(messages)
        except Exception as exc:  # noqa: BLE001 - they come back when their lease lapses anyway
            log.warning("nack of %d messages failed (they return when their lease lapses): %s",
                        len(messages), exc)
        self.metrics.incr("nacked", len(messages))
        return len(messages)


_BODY = attrgetter("body")


def _total_size(messages: Sequence[Message]) -> int:
    """Bytes of the bodies (C-level map: this runs on every receive and every flush)."""
    return sum(map(len, map(_BODY, messages)))


def _without(frame: Frame, rejected: Mapping[int, str]) -> Frame:
    keep = [i for i, src in enumerate(frame.sources) if src not in rejected]
    return frame if len(keep) == len(frame) else frame.take(keep)


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
