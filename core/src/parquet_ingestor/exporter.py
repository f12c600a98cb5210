"""Prometheus ``/metrics`` and a ``/healthz`` that turns 503 when the pipeline is stuck.

Uses prometheus-client (``pip install parquet-ingestor[metrics]``); imported only when
``--metrics-port`` is given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ConfigError

_GAUGES = {"in_flight_messages", "in_flight_bytes", "flush_seconds_total", "flush_seconds_max",
           "uptime_seconds"}
_HELP = {
    "received": "messages received from the source",
    "received_bytes": "bytes of message bodies received",
    "redelivered": "deliveries of rejected messages given back earlier (part of received)",
    "rejected": "messages rejected by the transformer or encoder",
    "rows_written": "records written to files",
    "bytes_written": "bytes of files written",
    "files_written": "files committed to the sink",
    "messages_written": "messages whose records were written",
    "acked": "messages acknowledged",
    "nacked": "messages given back to the source",
    "write_retries": "file writes retried",
    "write_failures": "files that failed after all retries (or batches before any file)",
    "possible_duplicate_rows": "rows of nacked messages already committed in another file",
    "ack_retries": "acknowledgements retried",
    "ack_failures": "messages that could not be acknowledged",
    "lease_extensions": "lease (visibility) extensions",
    "errors_written": "rejected messages written to the error sink",
    "batches": "batches flushed",
    "workers_scaled_up": "autoscaler decisions that added flush workers",
    "workers_scaled_down": "autoscaler decisions that removed flush workers",
    "pollers_scaled_up": "autoscaler decisions that added source pollers",
    "pollers_scaled_down": "autoscaler decisions that removed source pollers",
}


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


class _Collector:
    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.pipeline.metrics.snapshot()
        for name, help_text in _HELP.items():
            yield CounterMetricFamily(f"ingest_{name}", help_text, value=snap.get(name, 0))
        for name in sorted(set(snap) - set(_HELP) - _GAUGES):  # components' own counters
            yield CounterMetricFamily(f"ingest_{name}", f"{name} (counted by a component)",
                                      value=snap.get(name, 0))
        yield GaugeMetricFamily("ingest_in_flight_messages", "messages received, not settled",
                                value=snap["in_flight_messages"])
        yield GaugeMetricFamily("ingest_in_flight_bytes", "bytes received, not settled",
                                value=snap["in_flight_bytes"])
        yield CounterMetricFamily("ingest_flush_seconds", "time spent flushing batches",
                                  value=snap["flush_seconds_total"])
        yield GaugeMetricFamily("ingest_flush_seconds_max", "slowest flush so far",
                                value=snap["flush_seconds_max"])
        ok, _ = healthy(self.pipeline)
        yield GaugeMetricFamily("ingest_up", "1 unless the pipeline is stuck", value=int(ok))


def start_exporter(pipeline: Any, port: int, host: str = "") -> ThreadingHTTPServer:
    """Serve /metrics and /healthz in a daemon thread; ``.shutdown()`` stops it.

    All interfaces by default (like prometheus-client's own server): Prometheus and the
    kubelet's probes reach a container on its pod IP, never on its loopback.
    """
    try:
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError:
        raise ConfigError("--metrics-port needs prometheus-client: "
                          "pip install 'parquet-ingestor[metrics]'") from None
    registry = CollectorRegistry()
    registry.register(_Collector(pipeline))  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.startswith("/metrics"):
                body, status, ctype = generate_latest(registry), 200, "text/plain; version=0.0.4"
            elif self.path.startswith("/healthz"):
                ok, text = healthy(pipeline)
                body, status, ctype = text.encode() + b"\n", 200 if ok else 503, "text/plain"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: {exc.strerror}") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
