"""The runner: threads, the receive loop and the lifecycle of a pipeline.

One receive loop (the caller's thread) fills the :class:`~parquet_ingestor.batcher.Batcher`;
full batches go through a bounded queue to ``workers`` flush threads, so when writes are slow,
receiving pauses (backpressure) and memory stays bounded by batch size x (workers + one queued
per four workers + the one filling); ``--memory-limit`` (:mod:`.memory`) holds the resident
size.
Each flush worker hands its batch to :class:`~parquet_ingestor.commit.Committer`. With
``workers="auto"`` (or a source whose pollers are on auto) an
:class:`~parquet_ingestor.autoscale.Autoscaler` thread resizes the workers and the flush queue
(and the source's pollers) from the counters this module keeps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from .autoscale import Autoscaler, MemoryPressure, Sample, SourcePollers
from .batcher import Batch, Batcher
from .commit import Committer, FileResult, FlushResult
from .errors import Aborted, ConfigError
from .interfaces import Encoder, RunContext, Sink, SinkRequirements, Source, Transformer
from .layout import Layout
from .memory import BATCH_FACTOR, MemoryLimit, default_limit
from .message import Message, count_records
from .metrics import Metrics
from .openfiles import OpenFile
from .plugins import call_each
from .poison import PoisonGuard
from .settings import PipelineSettings
from .tuning import tuned

log = logging.getLogger("parquet_ingestor")

_BODY = attrgetter("body")

#: How many recent files ``Pipeline.files`` keeps.
RECENT_FILES = 1000
#: seconds an abort waits for commits already under way (an S3 upload completing) before the
#: source is closed and releases what it holds
ABORT_COMMIT_GRACE = 10.0
#: longest the receive loop waits between checks once the source is exhausted and batches are
#: still being written; the end of every flush (and an abort) wakes it at once
SETTLE_CHECK = 0.02


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
        memory_pressure: MemoryPressure | None = None,
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
        #: the most recent files written (at most RECENT_FILES: a long run must not grow it;
        #: totals are in ``metrics``, every file in the ``ingest_batch_flushed`` hook)
        self.files: deque[FileResult] = deque(maxlen=RECENT_FILES)
        self.layout = Layout(self.settings)
        self._hooks = hooks
        self._stop = threading.Event()
        self._abort = threading.Event()
        #: set when a flush job ends (and on abort): wakes the receive loop waiting for the
        #: last batches, so a run ends when its last write does, not at the next poll
        self._settled = threading.Event()
        low, _ = self.settings.worker_bounds
        # one batch queued ahead of every four workers: a worker that finishes finds the next
        # batch, and fewer batches wait in memory (each holds its bodies as Messages)
        self._queue: queue.Queue[list[Message] | Callable[[], object] | None] = queue.Queue(
            maxsize=_queued_batches(low))
        self._given_pressure = memory_pressure
        self._busy = 0
        self._busy_lock = threading.Lock()
        # the flush workers: index -> thread; workers at or above the target retire
        self._pool_lock = threading.Lock()
        self._live: dict[int, threading.Thread] = {}
        self._worker_target = low
        self._scaling = threading.Event()  # set: the autoscaler stops
        # cumulative load counters, sampled by the autoscaler
        self._flushed_bytes = 0
        self._busy_seconds = 0.0
        self._backlog_seconds = 0.0
        self._starved_seconds = 0.0
        self._commit = Committer(self)
        self._source_stopped = False
        self._batcher: Batcher | None = None
        #: rejected messages given back to the source: their redeliveries are recognized (one
        #: warning per message, not per delivery) and poison ones are held off (--max-deliveries)
        self.poison = PoisonGuard(self.settings.max_deliveries)
        self.stopped_reason = ""
        self._check_hold_budget()
        self._check_row_groups()
        #: the run's memory limit and the process's use of it (pressure, gauges)
        self.memory = self._memory_limit()
        #: the memory-pressure signal of the autoscaler (a fraction of the memory limit)
        self.memory_pressure: MemoryPressure = self._given_pressure or self.memory.pressure
        _, high = self.settings.worker_bounds
        #: batch limits as used: the configured ones, batches shrunk to fit the memory limit
        self.batch_limits = dataclasses.replace(
            self.settings.batch, max_bytes=self.memory.batch_bytes(
                self.settings.batch.max_bytes,
                high + _queued_batches(high) + 1))
        #: bytes of messages that may wait in open files (``max_held_bytes``, or less to fit
        #: the memory limit)
        self.max_held_bytes = self.memory.held_bytes(self.settings.max_held_bytes)
        if self.batch_limits.max_bytes < self.settings.batch.max_bytes:
            log.info("batches of at most %.1f MiB (not %.1f) to stay within --memory-limit "
                     "%.0f MiB", self.batch_limits.max_bytes / (1 << 20),
                     self.settings.batch.max_bytes / (1 << 20),
                     (self.memory.limit or 0) / (1 << 20))

    def _memory_limit(self) -> MemoryLimit:
        """``--memory-limit``, or 80% of the cgroup's limit when not given (0: off)."""
        given = self.settings.memory_limit
        memory = MemoryLimit(default_limit() if given is None else given)
        flag = ("--memory-limit" if given is not None
                else "--memory-limit (default: 80% of the cgroup's memory.max)")
        memory.check(self.settings.batch.max_bytes, flag)
        return memory

    def _check_hold_budget(self) -> None:
        """Files that outlive a batch must commit before the source's hold budget runs out."""
        budget = self.hold_budget
        if self.settings.spans_batches and budget is not None and self.settings.file_age > budget:
            flag = ("--max-file-age" if self.settings.max_file_age is not None
                    else "--batch-max-age (the default of --max-file-age)")
            raise ConfigError(f"{flag}: {self.settings.file_age:g}s is above the source's hold "
                              f"budget of {budget:g}s")

    def _check_row_groups(self) -> None:
        """A file must hold at least one row group (an encoder's optional
        ``row_group_bytes``)."""
        row_group = getattr(self.encoder, "row_group_bytes", None)
        target = self.settings.target_file_size
        if target and isinstance(row_group, int) and target < row_group:
            raise ConfigError(f"--target-file-size: {target / (1 << 20):g}MiB is below the "
                              f"encoder's row-group size of {row_group / (1 << 20):g}MiB "
                              f"(its option row_group_bytes)")

    @property
    def hold_budget(self) -> float | None:
        """How long the source can hold a message (its optional ``hold_budget``; None: no
        limit): files holding messages commit before it runs out."""
        budget = getattr(self.source, "hold_budget", None)
        return float(budget) if isinstance(budget, int | float) else None

    # ---------------------------------------------------------------- control

    def stop(self) -> None:
        """Stop receiving; flush and acknowledge everything buffered, then return from ``run``."""
        self._stop.set()

    def abort(self) -> None:
        """Stop now: in-flight writes are abandoned and nothing unwritten is acknowledged."""
        self._abort.set()
        self._stop.set()
        self._settled.set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    @property
    def abort_event(self) -> threading.Event:
        """Set on abort; writes and retries watch it to stop at once."""
        return self._abort

    def call_hook(self, name: str, **kwargs: Any) -> None:
        """Call each implementation of an observer hook on its own: one that raises is logged,
        and neither breaks the run nor silences the others."""
        if self._hooks is None:
            return
        caller = getattr(self._hooks, name, None)
        if caller is not None:
            call_each(caller, pipeline=self, **kwargs)

    # ---------------------------------------------------------------- run

    def run(self) -> Metrics:
        """Run until the source is drained, idle for ``exit_when_idle``, or ``stop()``."""
        self._start_components(self._context())
        self._resize_workers(self._worker_target)
        self._start_autoscaler()
        self.call_hook("ingest_pipeline_started")
        batcher = self._batcher = Batcher(self.batch_limits)
        try:
            with tuned():
                try:
                    self._receive_loop(batcher)
                finally:
                    if not self._abort.is_set() and len(batcher):
                        self._submit(batcher.take())
                    elif len(batcher):
                        self._commit.release(batcher.take())
                    self._scaling.set()
                    with self._pool_lock:
                        self._worker_target = 1 << 30  # no worker retires from now on
                        threads = list(self._live.values())
                    for _ in threads:
                        self._put(None, force=True)
                    self._join(threads)
                    self.close_files()
        finally:
            self._close_components()
            self.call_hook("ingest_pipeline_stopped", metrics=self.metrics)
        return self.metrics

    def validate(self) -> None:
        """Start the sinks, encoder and transformer (their checks: the bucket exists...) and
        close everything, without starting the source: a source checks itself when it is built
        (the queue exists) and must not receive, which would count as a delivery.
        ``ingest --validate`` calls this."""
        context = self._context()
        try:
            self._start_components(context, source=False)
        finally:
            self._close_components()

    def flush(self, batch: Sequence[Message], worker: int = 0) -> FlushResult:
        """Settle one batch; public so tests and embedders can drive a pipeline by hand.
        With ``target_file_size`` the rows may wait in open files: see :meth:`close_files`."""
        return self._commit.flush(batch, worker)

    def unacked_since(self) -> float | None:
        """``time.monotonic()`` when the oldest message not yet settled was received: in the
        batcher, queued or being flushed, or in an open file (None: none)."""
        batcher = self._batcher
        times = (self.metrics.oldest_held(), batcher.started if batcher else None,
                 self._commit.open_files.oldest())
        return min((t for t in times if t is not None), default=None)

    @property
    def workers(self) -> int:
        """Flush workers now (the autoscaler changes it with ``--workers auto``)."""
        return self._worker_target if self._worker_target < 1 << 30 else len(self._live)

    @property
    def pollers(self) -> int | None:
        """The source's pollers now, for a source that has them (``pollers``), else None."""
        pollers = getattr(self.source, "pollers", None)
        return pollers if isinstance(pollers, int) else None

    def _resize_workers(self, n: int) -> int:
        """Run ``n`` flush workers and let the flush queue hold ``n`` batches: new ones start
        at once, surplus ones retire after the batch they are on. Refused once the run is
        ending (its workers are being stopped)."""
        with self._pool_lock:
            if self._scaling.is_set():
                return self.workers
            self._worker_target = n
            with self._queue.mutex:
                self._queue.maxsize = _queued_batches(n)
                self._queue.not_full.notify_all()
            for i in range(n):
                if i not in self._live:
                    thread = threading.Thread(target=self._worker, args=(i,), name=f"flush-{i}",
                                              daemon=True)
                    self._live[i] = thread
                    thread.start()
        self.metrics.set_gauge("workers", n)
        return n

    def _retire(self, worker: int) -> bool:
        with self._pool_lock:
            if worker < self._worker_target:
                return False
            del self._live[worker]
            return True

    def _start_autoscaler(self) -> None:
        """Start the autoscaler's thread when workers or the source's pollers are on auto."""
        pollers = SourcePollers.of(self.source)
        if not self.settings.autoscaled and pollers is None:
            return
        scaler = Autoscaler(
            self.settings.autoscale, self._sample,
            workers=_Workers(self) if self.settings.autoscaled else None,
            worker_bounds=self.settings.worker_bounds,
            pollers=pollers, poller_bounds=pollers.bounds if pollers else (1, 1),
            count=self.metrics.incr)
        threading.Thread(target=scaler.run, args=(self._scaling,), name="autoscale",
                         daemon=True).start()

    def _sample(self) -> Sample:
        with self._busy_lock:
            flushed, busy = self._flushed_bytes, self._busy_seconds
        return Sample(cpu_seconds=time.process_time(), flushed_bytes=flushed,
                      received=self.metrics.counts.get("received", 0),
                      backlog_seconds=self._backlog_seconds,
                      starved_seconds=self._starved_seconds, busy_seconds=busy,
                      memory=self.memory_pressure())

    def _context(self) -> RunContext:
        return RunContext(workers=self.settings.worker_bounds[1], metrics=self.metrics,
                          batch=self.settings.batch, max_deliveries=self.settings.max_deliveries,
                          sink=self.sink, event_time_field=self.settings.event_time_field,
                          settings=self.settings,
                          multi_record=(getattr(self.transformer, "multi_record", False) is True
                                        and not self.settings.batch.max_records))

    @property
    def poisoned(self) -> int:
        """Messages rejected ``max_deliveries`` times and, without an error sink, given back to
        the source unwritten (the CLI then exits 1)."""
        return self.poison.poisoned

    def close_files(self) -> None:
        """Commit every open file now (files that outlive a batch) and settle their messages;
        ``run()`` does this at its end. An abort drops them instead."""
        files = self._commit.open_files
        if self._abort.is_set():
            files.abort_all()
            return
        try:
            files.close(files.all(), "end of run")
        except Aborted:
            files.abort_all()

    def _start_components(self, context: RunContext, source: bool = True) -> None:
        """Start sinks first and the source last, so a bad sink (missing bucket) fails the run
        before any message is received; hand the sink's requirements (a table's schema) to the
        encoder; if anything fails, close what was already started."""
        started: list[Any] = []
        order = [self.error_sink, self.sink, self.encoder, self.transformer]
        try:
            for component in order + ([self.source] if source else []):
                start = getattr(component, "start", None)
                if callable(start):
                    try:
                        start(context)
                    except ConfigError as exc:
                        if component is not self.error_sink or component is self.sink:
                            raise
                        # "sink 's3' option 'bucket'..." would point at the main sink
                        raise ConfigError(f"--error-sink: {exc}") from None
                started.append(component)
                if component is self.encoder:
                    self._require()
        except BaseException:
            for component in started:
                self._close(component)
            raise

    def _require(self) -> None:
        """Pass the sink's :class:`SinkRequirements` (if any) to the encoder's ``require``."""
        requirements = getattr(self.sink, "requirements", None)
        needs: SinkRequirements | None = requirements() if callable(requirements) else None
        if needs is None:
            return
        require = getattr(self.encoder, "require", None)
        if not callable(require):
            raise ConfigError(
                f"sink '{self.names.get('sink', type(self.sink).__name__)}' requires a schema "
                f"and partitioning that encoder "
                f"'{self.names.get('encoder', type(self.encoder).__name__)}' cannot write")
        require(needs)

    def _join(self, threads: list[threading.Thread]) -> None:
        """Wait for the workers to drain; once aborted (even mid-wait) give them 2 s at most,
        or up to ABORT_COMMIT_GRACE while a commit is running: the source is closed (which
        releases what it holds) only after the commits end, so nothing is both released and
        committed."""
        deadline: float | None = None
        for thread in threads:
            while thread.is_alive():
                if self._abort.is_set():
                    deadline = deadline or time.monotonic() + 2.0
                    running = self._commit.gate.running()
                    if time.monotonic() >= deadline and not running:
                        return
                    if time.monotonic() >= deadline - 2.0 + ABORT_COMMIT_GRACE:
                        log.warning("%d commits still running %gs after the abort; their "
                                    "messages may be written and delivered again",
                                    running, ABORT_COMMIT_GRACE)
                        return
                thread.join(0.1)

    def _receive_loop(self, batcher: Batcher) -> None:
        settings = self.settings
        idle_since = time.monotonic()
        failures = 0
        while not self._stop.is_set() or self._source_draining():
            if self.memory.limited:
                self._make_room(batcher)
            timeout = max(0.0, min(settings.poll_interval, batcher.time_left()))
            asked = time.monotonic()
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
            if len(messages) < settings.receive_max:  # the source had no more ready
                self._starved_seconds += now - asked
            if messages:
                if not self.poison.only_poison(messages):  # a poison loop is not activity
                    idle_since = now
                sizes = list(map(len, map(_BODY, messages)))
                size = sum(sizes)
                count = count_records(messages)  # a block counts its lines
                self.metrics.incr("received", count)
                again = _redelivered(messages, self.poison)
                if again:
                    self.metrics.incr("redelivered", again)
                self.metrics.incr("received_bytes", size)
                self.metrics.add_in_flight(count, size)
                for batch in batcher.add(messages, sizes):
                    self._submit(batch)
            if batcher.due():
                self._submit(batcher.take())
            if settings.spans_batches:
                due = self._commit.open_files.due(now, self.hold_budget)
                if due:
                    self._submit_job(functools.partial(self._close_due, due))
            if not messages:
                if self.source.exhausted:
                    # in-flight batches may still give messages back (nack): drained only
                    # once nothing is buffered or being flushed and the source stays empty
                    if len(batcher):
                        self._submit(batcher.take())
                    elif self._idle() and self.source.exhausted:
                        self.stopped_reason = "stopped" if self._stop.is_set() else "drained"
                        return
                    else:
                        self._wait_settled()
                    continue
                idle = settings.exit_when_idle
                if idle is not None and now - idle_since >= idle and self._idle():
                    if len(batcher):
                        self._submit(batcher.take())
                        continue
                    self.stopped_reason = "idle"
                    return
        self.stopped_reason = "aborted" if self._abort.is_set() else "stopped"

    def _make_room(self, batcher: Batcher) -> None:
        """With a memory limit, receive only when one more batch fits: until then hand the
        batch being filled to the workers (a smaller batch), commit the largest open file,
        and wait for flushes to finish. With nothing left to wait for, go on (and say so)."""
        memory = self.memory
        need = BATCH_FACTOR * self.batch_limits.max_bytes
        trimmed = False
        closing: threading.Event | None = None
        while memory.would_pass(need) and not self._stop.is_set():
            if len(batcher):
                self._submit(batcher.take())
                continue
            files = [] if closing and not closing.is_set() else (
                self._commit.open_files.closable())
            if files:
                closing = threading.Event()
                self._submit_job(functools.partial(self._close_files, files, "memory limit",
                                                   closing))
            elif self._idle() and not self._commit.open_files.closable(peek=True):
                if not trimmed:
                    trimmed = True
                    memory.release_freed()
                    continue
                memory.warn_once("resident memory %.0f MiB is above --memory-limit %.0f MiB "
                                 "with nothing buffered or open; receiving anyway",
                                 memory.used() / (1 << 20), (memory.limit or 0) / (1 << 20))
                return
            self._abort.wait(0.02)

    def _wait_settled(self) -> None:
        """Wait until a flush job ends (or an abort), or SETTLE_CHECK at most (the source may
        stop being exhausted on its own)."""
        self._settled.clear()
        if not self._idle():  # checked after clear(): a job ending now sets it again
            self._settled.wait(SETTLE_CHECK)

    def _source_draining(self) -> bool:
        """After stop(): a source that cannot redeliver (it has ``stop_reading``, like stdin)
        stops reading and is received from until exhausted, so no line it read is lost."""
        stop_reading = getattr(self.source, "stop_reading", None)
        if self._abort.is_set() or not callable(stop_reading):
            return False
        if not self._source_stopped:
            self._source_stopped = True
            stop_reading()
        return True

    def _idle(self) -> bool:
        with self._busy_lock:
            return self._busy == 0 and self._queue.empty()

    def _submit(self, batch: list[Message]) -> None:
        if batch:
            with self._busy_lock:
                self._busy += 1
            self.metrics.hold(id(batch), getattr(batch, "received", None) or time.monotonic())
            if not self._put(batch):
                with self._busy_lock:
                    self._busy -= 1
                self._commit.release(batch)
                self.metrics.settle(id(batch))

    def _close_due(self, due: list[OpenFile]) -> None:
        self._close_files(due, "age or hold budget")

    def _close_files(self, files: list[OpenFile], why: str,
                     done: threading.Event | None = None) -> None:
        try:
            self._commit.open_files.close(files, why)
        except Aborted:
            self._commit.open_files.abort_all()
        finally:
            if done is not None:
                done.set()

    def _submit_job(self, job: Callable[[], object]) -> None:
        """Run ``job`` on a flush worker (closing open files that are due)."""
        with self._busy_lock:
            self._busy += 1
        if not self._put(job):
            with self._busy_lock:
                self._busy -= 1

    def _put(self, item: list[Message] | Callable[[], object] | None, force: bool = False,
             ) -> bool:
        """Block while the flush queue is full (backpressure); give up only on abort. Time
        spent waiting counts as backlog (the autoscaler's signal to add workers)."""
        if self._abort.is_set() and not force:
            return False
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            pass
        started = time.monotonic()
        try:
            return self._put_waiting(item, force)
        finally:
            self._backlog_seconds += time.monotonic() - started

    def _put_waiting(self, item: list[Message] | Callable[[], object] | None, force: bool,
                     ) -> bool:
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
                        if isinstance(dropped, list) and dropped:
                            self._commit.release(dropped)
                            self.metrics.settle(id(dropped))

    def _close_components(self) -> None:
        """Close everything after a run (or a validate): source, sinks, encoder, transformer."""
        for component in (self.source, self.sink, self.error_sink, self.encoder,
                          self.transformer):
            self._close(component)

    @staticmethod
    def _close(component: Any) -> None:
        close = getattr(component, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - close the others anyway
                log.exception("closing %s failed", type(component).__name__)

    # ---------------------------------------------------------------- flush

    def _worker(self, worker: int) -> None:
        while not self._retire(worker):
            batch = self._queue.get()
            if batch is None:
                return
            started = time.monotonic()
            if callable(batch):
                try:
                    batch()
                except Exception:  # noqa: BLE001 - a bug must not kill the worker
                    log.exception("closing open files failed")
                finally:
                    self._done(started, 0)
                continue
            nbytes = batch.nbytes if isinstance(batch, Batch) else sum(map(len, map(_BODY, batch)))
            try:
                if self._abort.is_set():
                    self._commit.release(batch)
                else:
                    self.flush(batch, worker)
            except Exception:  # noqa: BLE001 - a bug must not kill the worker
                log.exception("flush failed unexpectedly; releasing %d messages", len(batch))
                self._commit.release(batch)
            finally:
                self.metrics.settle(id(batch))
                self._done(started, nbytes)

    def _done(self, started: float, nbytes: int) -> None:
        """A worker finished a job: one fewer busy, and its time and bytes counted."""
        with self._busy_lock:
            self._busy -= 1
            self._busy_seconds += time.monotonic() - started
            self._flushed_bytes += nbytes
        self._settled.set()


def _queued_batches(workers: int) -> int:
    """Batches the flush queue holds for ``workers`` workers: one per four, at least one."""
    return max(1, workers // 4)


class _Workers:
    """The flush workers as the autoscaler sees them (:class:`~.autoscale.Resizable`)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    @property
    def size(self) -> int:
        return self._pipeline.workers

    def resize(self, n: int) -> int:
        return self._pipeline._resize_workers(n)


def _redelivered(messages: Sequence[Message], poison: PoisonGuard) -> int:
    """Deliveries after the first among ``messages`` (a block counts its lines): by the count
    the source keeps (``Message.deliveries``: SQS, or its ``HeldMessages`` after a nack), else
    by the poison guard's memory of the rejected messages it gave back."""
    again = count_records([m for m in messages if (m.deliveries or 1) > 1])
    if poison:
        again += poison.redeliveries([m for m in messages if m.deliveries is None])
    return again
