"""The OpenTelemetry adapter: the run's metrics pushed over OTLP/HTTP (``--metrics-otlp URL``).

Uses the OpenTelemetry SDK and its OTLP/HTTP exporter (``pip install 'parquet-ingestor[otlp]'``),
imported only when the option is given. Counters become OTel counters (cumulative totals),
the flush timing a histogram in seconds, gauges observable gauges read at each export; every
``--metrics-interval`` a reader pushes them, and once more when the run ends. ``--metrics-tag
K:V`` values become resource attributes, next to ``service.name``. The SDK's own provider is
used, never the process-wide one, so an embedding application's telemetry is left alone.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .errors import ConfigError
from .metrics import BY_NAME, COUNTERS, GAUGES

INSTALL = "pip install 'parquet-ingestor[otlp]'"
#: the OTLP/HTTP metrics path, added to a URL given without a path
METRICS_PATH = "/v1/metrics"
#: seconds a start-up check or an export may take
TIMEOUT = 5.0


def endpoint(url: str) -> str:
    """``url`` with the OTLP metrics path when it has none (``http://collector:4318``)."""
    parts = urllib.parse.urlsplit(url)
    return url.rstrip("/") + METRICS_PATH if parts.path in ("", "/") else url


def check_url(url: str) -> None:
    """``Option.check``: an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")


def probe(url: str) -> None:
    """Post an empty export request: a ConfigError when nothing answers at ``url`` (refused,
    unknown host, timeout) or the answer says it is the wrong place (404, 405)."""
    request = urllib.request.Request(url, data=b"", method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT):  # noqa: S310 - http(s) checked
            pass
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 405):
            raise ConfigError(f"--metrics-otlp {url}: answered {exc.code} {exc.reason}; an "
                              f"OTLP/HTTP receiver takes metrics at {METRICS_PATH}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"--metrics-otlp {url}: cannot reach it: {reason}") from None


class OtlpAdapter:
    """Pushes the run's metrics to an OTLP/HTTP receiver (see the module docstring)."""

    def __init__(self, url: str, prefix: str = "ingest", tags: Sequence[str] = (),
                 interval: float = 10.0) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.resources import Resource
        except ImportError:
            raise ConfigError(f"--metrics-otlp needs the OpenTelemetry SDK and OTLP exporter: "
                              f"{INSTALL}") from None
        self.url = endpoint(url)
        probe(self.url)
        self._prefix = f"{prefix}." if prefix else ""
        attributes: dict[str, Any] = {"service.name": "parquet-ingestor"}
        attributes.update(tag.partition(":")[::2] for tag in tags)
        exporter = OTLPMetricExporter(endpoint=self.url, timeout=TIMEOUT)
        self._reader = PeriodicExportingMetricReader(
            exporter, export_interval_millis=interval * 1000,
            export_timeout_millis=TIMEOUT * 1000)
        self._provider = MeterProvider(metric_readers=[self._reader],
                                       resource=Resource.create(attributes),
                                       shutdown_on_exit=False)
        self._meter = self._provider.get_meter("parquet_ingestor")
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._gauges: Callable[[], Mapping[str, float]] = dict
        for name in COUNTERS:
            self._instrument(name, "counter")
        for name in GAUGES:
            self._meter.create_observable_gauge(
                self._prefix + name, callbacks=[self._observer(name)],
                unit=BY_NAME[name].unit, description=BY_NAME[name].help)

    def _instrument(self, name: str, kind: str) -> Any:
        """The counter (or, for a timing, the histogram in seconds) of ``name``, made once."""
        instrument = self._instruments.get(name)
        if instrument is None:
            with self._lock:
                instrument = self._instruments.get(name)
                if instrument is None:
                    spec = BY_NAME.get(name)
                    unit = spec.unit if spec else "1" if kind == "counter" else "s"
                    about = spec.help if spec else f"{name} (from a component)"
                    create = (self._meter.create_counter if kind == "counter"
                              else self._meter.create_histogram)
                    instrument = create(self._prefix + name, unit=unit, description=about)
                    self._instruments[name] = instrument
        return instrument

    def _observer(self, name: str) -> Callable[[Any], Iterable[Any]]:
        from opentelemetry.metrics import Observation

        def observe(_options: Any) -> Iterable[Any]:
            value = self._gauges().get(name)
            return [] if value is None else [Observation(value)]

        return observe

    # -------------------------------------------------------------- MetricsAdapter

    def start(self, gauges: Callable[[], Mapping[str, float]]) -> None:
        self._gauges = gauges

    def count(self, name: str, amount: float) -> None:
        self._instrument(name, "counter").add(amount)

    def timing(self, name: str, seconds: float) -> None:
        self._instrument(name, "timing").record(seconds)

    def close(self) -> None:
        """Export once more (the run's final totals), then stop the reader."""
        self._provider.shutdown(timeout_millis=2 * TIMEOUT * 1000)
