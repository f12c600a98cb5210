"""Counters and gauges of a running pipeline, cheap enough to update per batch.

Every metric is declared once, in :data:`METRICS` (name, kind, help, unit); the Prometheus
endpoint (:mod:`.exporter`) and the push adapters (:mod:`.metric_adapters`: DogStatsD,
OpenTelemetry, plugins') derive their names and descriptions from it. :class:`Metrics` keeps the
totals and fans each counter increment and timing out to the attached adapters as it happens;
gauges are read when an adapter exports (:func:`gauge_values`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

log = logging.getLogger("parquet_ingestor")

MetricKind = Literal["counter", "gauge", "timing"]


@dataclass(frozen=True)
class Metric:
    """One metric: ``counter`` (a total that only grows), ``gauge`` (a level read when
    exported) or ``timing`` (one duration per event, in seconds). ``unit`` is UCUM, as
    OpenTelemetry wants it (``By``, ``s``, ``1``)."""

    name: str
    kind: MetricKind
    help: str
    unit: str = "1"


#: The declaration of every metric the core counts (components may count their own counters).
METRICS: tuple[Metric, ...] = (
    Metric("received", "counter", "messages received from the source (a block counts its lines)"),
    Metric("received_bytes", "counter", "bytes of message bodies received", "By"),
    Metric("redelivered", "counter",
           "deliveries of messages delivered before: given back after a rejection or a "
           "failed write, or by another consumer (part of received)"),
    Metric("rejected", "counter", "messages rejected by the transformer or encoder"),
    Metric("rows_written", "counter", "records written to files"),
    Metric("bytes_written", "counter", "bytes of files written", "By"),
    Metric("files_written", "counter", "files committed to the sink"),
    Metric("messages_written", "counter", "messages whose records were written (a block counts its lines)"),
    Metric("acked", "counter", "messages acknowledged (a block counts its lines)"),
    Metric("nacked", "counter", "messages given back to the source (a block counts its lines)"),
    Metric("write_retries", "counter", "file writes retried"),
    Metric("write_failures", "counter",
           "files that failed after all retries (or batches before any file)"),
    Metric("ack_retries", "counter", "acknowledgements retried"),
    Metric("ack_failures", "counter", "messages that could not be acknowledged"),
    Metric("lease_extensions", "counter", "lease (visibility) extensions"),
    Metric("errors_written", "counter", "rejected messages written to the error sink"),
    Metric("batches", "counter", "batches flushed"),
    Metric("possible_duplicate_rows", "counter",
           "rows of nacked messages already committed in another file"),
    Metric("poisoned", "counter",
           "messages rejected --max-deliveries times and given back without an error sink"),
    Metric("workers_scaled_up", "counter", "autoscaler decisions that added flush workers"),
    Metric("workers_scaled_down", "counter", "autoscaler decisions that removed flush workers"),
    Metric("pollers_scaled_up", "counter", "autoscaler decisions that added source pollers"),
    Metric("pollers_scaled_down", "counter", "autoscaler decisions that removed source pollers"),
    Metric("flush", "timing", "time spent flushing one batch", "s"),
    Metric("in_flight_messages", "gauge", "messages received, not settled"),
    Metric("in_flight_bytes", "gauge", "bytes received, not settled", "By"),
    Metric("oldest_unacked_seconds", "gauge",
           "age of the oldest message received and not yet settled", "s"),
    Metric("open_files", "gauge", "files open across batches (--target-file-size)"),
    Metric("open_file_bytes", "gauge", "encoded bytes written into the open files", "By"),
    Metric("workers", "gauge", "flush workers"),
    Metric("pollers", "gauge", "source pollers (sources that have them)"),
    Metric("memory_limit_bytes", "gauge", "the memory limit the run holds to (when set)", "By"),
    Metric("memory_rss_bytes", "gauge", "resident memory of the process", "By"),
    Metric("up", "gauge", "1 unless the pipeline is stuck"),
)
BY_NAME: Mapping[str, Metric] = {m.name: m for m in METRICS}
COUNTERS = tuple(m.name for m in METRICS if m.kind == "counter")
GAUGES = tuple(m.name for m in METRICS if m.kind == "gauge")


class MetricsAdapter(Protocol):
    """Where a run's metrics go besides ``/metrics``: DogStatsD, OTLP, a plugin's backend.

    ``count`` and ``timing`` are called as things happen, on the receive loop and the flush
    workers (once per receive or per batch, never per record): they must be quick,
    thread-safe and never raise. ``start`` gets a function returning the current gauges (read
    it whenever you export); ``close`` runs after the pipeline stopped and sends what is left.
    """

    def start(self, gauges: Callable[[], Mapping[str, float]]) -> None: ...

    def count(self, name: str, amount: float) -> None: ...

    def timing(self, name: str, seconds: float) -> None: ...

    def close(self) -> None: ...


@dataclass
class Metrics:
    """Thread-safe totals; read them with :meth:`snapshot`. Exporters subscribe via the hooks
    or as adapters (:meth:`attach`)."""

    started_at: float = field(default_factory=time.time)
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    in_flight_messages: int = 0
    in_flight_bytes: int = 0
    last_progress: float = field(default_factory=time.monotonic)
    flush_seconds_total: float = 0.0
    flush_seconds_max: float = 0.0
    #: gauges set by whoever knows the value (the runner: ``workers``; the memory limit)
    levels: dict[str, float] = field(default_factory=dict)
    _held: dict[int, float] = field(default_factory=dict, repr=False)
    _adapters: tuple[MetricsAdapter, ...] = field(default=(), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, adapter: MetricsAdapter) -> None:
        """Send every later increment and timing to ``adapter`` too."""
        self._adapters = (*self._adapters, adapter)

    def detach(self, adapter: MetricsAdapter) -> None:
        self._adapters = tuple(a for a in self._adapters if a is not adapter)

    def incr(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + amount
        for adapter in self._adapters:
            try:
                adapter.count(name, amount)
            except Exception:  # noqa: BLE001 - a metrics backend must not break the run
                log.debug("metrics adapter %s failed", type(adapter).__name__, exc_info=True)

    def set_gauge(self, name: str, value: float) -> None:
        """Set a level only its owner knows: ``workers`` (the runner, whenever it resizes),
        ``pollers`` (a source), ``memory_limit_bytes``."""
        with self._lock:
            self.levels[name] = value

    def add_in_flight(self, messages: int, nbytes: int) -> None:
        with self._lock:
            self.in_flight_messages += messages
            self.in_flight_bytes += nbytes

    def hold(self, key: int, received: float) -> None:
        """A batch (``key``: its id) whose oldest message came at ``received``
        (``time.monotonic()``) left the batcher; it counts until :meth:`settle`."""
        with self._lock:
            self._held[key] = received

    def settle(self, key: int) -> None:
        with self._lock:
            self._held.pop(key, None)

    def oldest_held(self) -> float | None:
        """When the oldest message of a batch not yet settled was received (None: none)."""
        with self._lock:
            return min(self._held.values(), default=None)

    def observe_flush(self, seconds: float) -> None:
        with self._lock:
            self.flush_seconds_total += seconds
            self.flush_seconds_max = max(self.flush_seconds_max, seconds)
            self.last_progress = time.monotonic()
        for adapter in self._adapters:
            try:
                adapter.timing("flush", seconds)
            except Exception:  # noqa: BLE001 - a metrics backend must not break the run
                log.debug("metrics adapter %s failed", type(adapter).__name__, exc_info=True)

    def progress(self) -> None:
        self.last_progress = time.monotonic()

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            snap = dict(self.counts)
            snap["in_flight_messages"] = self.in_flight_messages
            snap["in_flight_bytes"] = self.in_flight_bytes
            snap["flush_seconds_total"] = self.flush_seconds_total
            snap["flush_seconds_max"] = self.flush_seconds_max
            snap["uptime_seconds"] = time.time() - self.started_at
        return snap


def stuck_after(pipeline: Any) -> float:
    """Seconds without a flush, while work is pending, after which the pipeline counts as stuck."""
    age = pipeline.settings.batch.max_age or 300.0
    return max(120.0, 2 * age)


def healthy(pipeline: Any) -> tuple[bool, str]:
    metrics = pipeline.metrics
    if metrics.in_flight_messages <= 0:
        return True, "ok: idle"
    silent = time.monotonic() - metrics.last_progress
    if silent > stuck_after(pipeline):
        return False, f"stuck: {metrics.in_flight_messages} messages in flight, no flush for {silent:.0f}s"
    return True, f"ok: {metrics.in_flight_messages} messages in flight"


def gauge_values(pipeline: Any) -> dict[str, float]:
    """The declared gauges of ``pipeline`` now; a gauge without a value here (no pollers, no
    memory limit, no /proc) is left out. Works on a pipeline-like object with only
    ``metrics`` and ``settings`` too (tests, embedders)."""
    metrics: Metrics = pipeline.metrics
    with metrics._lock:
        out: dict[str, float] = {"in_flight_messages": metrics.in_flight_messages,
                                 "in_flight_bytes": metrics.in_flight_bytes}
        out.update(metrics.levels)
    since = getattr(pipeline, "unacked_since", None)
    oldest = since() if callable(since) else metrics.oldest_held()
    out["oldest_unacked_seconds"] = max(0.0, time.monotonic() - oldest) if oldest is not None else 0.0
    files = getattr(getattr(pipeline, "_commit", None), "open_files", None)
    if files is not None:
        out["open_files"], out["open_file_bytes"] = files.usage()
    if "pollers" not in out:
        pollers = getattr(getattr(pipeline, "source", None), "pollers", None)
        if isinstance(pollers, int) and not isinstance(pollers, bool):
            out["pollers"] = pollers
    memory = getattr(pipeline, "memory", None)  # the run's MemoryLimit (--memory-limit)
    if memory is not None:
        values = memory.gauges()
        out["memory_rss_bytes"] = values["memory_rss_bytes"]
        if memory.limited:
            out["memory_limit_bytes"] = values["memory_limit_bytes"]
    else:
        from .memory import rss

        if resident := rss():  # 0 where /proc is missing: no gauge
            out["memory_rss_bytes"] = resident
    out["up"] = int(healthy(pipeline)[0])
    return out
