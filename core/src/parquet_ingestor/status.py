"""On a terminal: a live status line while running, and a summary table on exit.

Nothing is printed when stderr is not a TTY (pipes, files, CI logs), where the log lines
already say everything.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from .units import format_size


class StatusLine:
    """Redraws one line on stderr every ``interval`` seconds from the pipeline's metrics."""

    def __init__(self, pipeline: Any, stream: TextIO | None = None, interval: float = 1.0) -> None:
        self.pipeline = pipeline
        self.stream = stream or sys.stderr
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="status", daemon=True)
        self._last = (time.monotonic(), 0.0, 0.0)

    def start(self) -> StatusLine:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.stream.write("\r\x1b[2K")
        self.stream.flush()

    def line(self) -> str:
        snap = self.pipeline.metrics.snapshot()
        now = time.monotonic()
        then, received, nbytes = self._last
        elapsed = max(1e-6, now - then)
        rate = (snap["received"] - received) / elapsed
        mbps = (snap["received_bytes"] - nbytes) / elapsed / 1e6
        self._last = (now, snap["received"], snap["received_bytes"])
        errors = snap["rejected"] + snap["write_failures"] + snap["ack_failures"]
        return (f"{rate:,.0f} msg/s  {mbps:.1f} MB/s  in flight {snap['in_flight_messages']:,.0f}"
                f"  files {snap['files_written']:,.0f}  rows {snap['rows_written']:,.0f}"
                f"  errors {errors:,.0f}")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()


def summary_table(metrics: Any, reason: str) -> str:
    """The table printed on exit: files, rows, bytes, rejected, retries, duration."""
    snap = metrics.snapshot()
    rows = [
        ("stopped", reason),
        ("duration", f"{snap['uptime_seconds']:.1f} s"),
        ("messages", f"{snap['received'] - snap.get('redelivered', 0):,.0f} "
                     f"({format_size(snap['received_bytes'])})"),
        ("redelivered", f"{snap.get('redelivered', 0):,.0f}"),
        ("files", f"{snap['files_written']:,.0f}"),
        ("rows", f"{snap['rows_written']:,.0f}"),
        ("bytes", f"{format_size(snap['bytes_written'])}"),
        ("acked", f"{snap['acked']:,.0f}"),
        ("rejected", f"{snap['rejected']:,.0f} ({snap['errors_written']:,.0f} to error sink)"),
        ("nacked", f"{snap['nacked']:,.0f}"),
        ("retries", f"{snap['write_retries']:,.0f} write, {snap['ack_retries']:,.0f} ack"),
    ]
    width = max(len(k) for k, _ in rows)
    body = "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
    return f"Summary\n{body}\n"


def is_tty(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
