"""Counters and gauges of a running pipeline, cheap enough to update per batch."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

COUNTERS = (
    "received", "received_bytes", "redelivered", "rejected", "rows_written", "bytes_written", "files_written",
    "messages_written", "acked", "nacked", "write_retries", "write_failures", "ack_retries",
    "ack_failures", "lease_extensions", "errors_written", "batches", "possible_duplicate_rows",
    "poisoned", "workers_scaled_up", "workers_scaled_down", "pollers_scaled_up",
    "pollers_scaled_down",
)


@dataclass
class Metrics:
    """Thread-safe totals; read them with :meth:`snapshot`. Exporters subscribe via the hooks."""

    started_at: float = field(default_factory=time.time)
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    in_flight_messages: int = 0
    in_flight_bytes: int = 0
    last_progress: float = field(default_factory=time.monotonic)
    flush_seconds_total: float = 0.0
    flush_seconds_max: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def incr(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + amount

    def add_in_flight(self, messages: int, nbytes: int) -> None:
        with self._lock:
            self.in_flight_messages += messages
            self.in_flight_bytes += nbytes

    def observe_flush(self, seconds: float) -> None:
        with self._lock:
            self.flush_seconds_total += seconds
            self.flush_seconds_max = max(self.flush_seconds_max, seconds)
            self.last_progress = time.monotonic()

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
