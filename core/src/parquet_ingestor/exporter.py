"""Prometheus ``/metrics`` and a ``/healthz`` that turns 503 when the pipeline is stuck.

Uses prometheus-client (``pip install parquet-ingestor[metrics]``); imported only when
``--metrics-port`` is given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ConfigError
from .metrics import BY_NAME, COUNTERS, gauge_values, healthy, stuck_after

#: seconds between the serving loop's looks at a shutdown request (an idle select: no cost)
SHUTDOWN_POLL = 0.05

__all__ = ["healthy", "start_exporter", "stuck_after"]


class _Collector:
    """Names and help from the declaration (``metrics.METRICS``): ``ingest_NAME_total`` per
    counter, ``ingest_NAME`` per gauge, ``ingest_flush_seconds`` (total) and
    ``ingest_flush_seconds_max`` for the flush timing."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.pipeline.metrics.snapshot()
        for name in COUNTERS:
            yield CounterMetricFamily(f"ingest_{name}", BY_NAME[name].help,
                                      value=snap.get(name, 0))
        others = set(snap) - set(COUNTERS) - {"in_flight_messages", "in_flight_bytes",
                                              "flush_seconds_total", "flush_seconds_max",
                                              "uptime_seconds"}
        for name in sorted(others):  # components' own counters
            yield CounterMetricFamily(f"ingest_{name}", f"{name} (counted by a component)",
                                      value=snap.get(name, 0))
        yield CounterMetricFamily("ingest_flush_seconds", "time spent flushing batches",
                                  value=snap["flush_seconds_total"])
        yield GaugeMetricFamily("ingest_flush_seconds_max", "slowest flush so far",
                                value=snap["flush_seconds_max"])
        for name, value in gauge_values(self.pipeline).items():
            spec = BY_NAME.get(name)
            yield GaugeMetricFamily(f"ingest_{name}", spec.help if spec else name, value=value)


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
    # shutdown() waits for the serving loop to look at its flag, once per poll interval:
    # socketserver's default of 0.5 s made every run with --metrics-port end ~0.25 s late
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                     name="metrics", daemon=True).start()
    return server
