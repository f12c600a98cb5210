"""The metrics registry of a run: one :class:`~parquet_ingestor.metrics.Metrics`, fanned out to
the adapters the options ask for.

``--metrics-statsd HOST:PORT`` (:mod:`.statsd`), ``--metrics-otlp URL`` (:mod:`.otlp`) and each
``--metrics-exporter NAME`` a plugin registered (``ingest_register_metrics_exporters``) become
:class:`~parquet_ingestor.metrics.MetricsAdapter` values attached to the run's metrics; the
Prometheus endpoint (``--metrics-port``, :mod:`.exporter`) reads the same metrics when scraped.
Nothing here imports an SDK: each adapter's module is imported when it is asked for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError
from .metrics import MetricsAdapter, gauge_values

log = logging.getLogger("parquet_ingestor")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
_TAG = re.compile(r"^[^\s,|#:@]+:[^\s,|#@]+$")


def check_statsd(address: str) -> None:
    """``Option.check`` of ``--metrics-statsd``."""
    from .statsd import split_address

    split_address(address)


def check_otlp(url: str) -> None:
    """``Option.check`` of ``--metrics-otlp`` (without importing the SDK)."""
    from .otlp import check_url

    check_url(url)


def check_prefix(prefix: str) -> None:
    if prefix and not _NAME.match(prefix):
        raise ValueError(f"{prefix!r}: use letters, digits, '_' and '.', starting with a letter")


def check_tags(tags: Sequence[str]) -> None:
    for tag in tags:
        if not _TAG.match(tag):
            raise ValueError(f"expected K:V without spaces, ',', '|', '#' or '@', got {tag!r}")


def check_rate(rate: float) -> None:
    if rate <= 0:
        raise ValueError(f"{rate:g} is not above 0 (1 sends every increment)")


class MetricAdapters:
    """The adapters of one run, attached to its metrics; :meth:`close` sends what is left."""

    def __init__(self, pipeline: Any, adapters: Sequence[MetricsAdapter]) -> None:
        self.pipeline = pipeline
        self.adapters = list(adapters)

    def start(self) -> MetricAdapters:
        for adapter in self.adapters:
            adapter.start(lambda: gauge_values(self.pipeline))
            self.pipeline.metrics.attach(adapter)
        return self

    def close(self) -> None:
        for adapter in self.adapters:
            self.pipeline.metrics.detach(adapter)
            try:
                adapter.close()
            except Exception as exc:  # noqa: BLE001 - the run is over; say so and go on
                log.warning("metrics adapter %s: closing failed: %s", type(adapter).__name__, exc)


def build_adapters(values: Mapping[str, Any], registry: Any = None) -> list[MetricsAdapter]:
    """The adapters asked for by the pipeline options ``values`` (ConfigError on bad input:
    an unknown exporter, a missing extra, an OTLP receiver that does not answer)."""
    prefix, tags = values.get("metrics_prefix") or "", list(values.get("metrics_tag") or ())
    interval = values.get("metrics_interval") or 10.0
    adapters: list[MetricsAdapter] = []
    plugin_options = exporter_options(values.get("metrics_exporter_opt") or ())
    names = list(values.get("metrics_exporter") or ())
    unused = sorted(set(plugin_options) - set(names))
    if unused:
        raise ConfigError(f"--metrics-exporter-opt {unused[0]}.*: no --metrics-exporter "
                          f"{unused[0]} given")
    specs = [exporter_spec(registry, name) for name in names]  # all checked before any starts
    for spec in specs:
        spec.parse(plugin_options.get(spec.name, {}))
    try:
        if values.get("metrics_statsd"):
            from .statsd import DogStatsd

            adapters.append(DogStatsd(values["metrics_statsd"], prefix, tags,
                                      values.get("metrics_sample_rate") or 1.0, interval))
        if values.get("metrics_otlp"):
            from .otlp import OtlpAdapter

            adapters.append(OtlpAdapter(values["metrics_otlp"], prefix, tags, interval))
        for spec in specs:
            adapters.append(spec.create(plugin_options.get(spec.name, {})))
    except BaseException:
        for adapter in adapters:
            adapter.close()
        raise
    return adapters


def exporter_spec(registry: Any, name: str) -> Any:
    """The ComponentSpec of the metrics exporter ``name`` a plugin registered."""
    known = registry.components["metrics_exporter"] if registry is not None else {}
    spec = known.get(name)
    if spec is None:
        available = ", ".join(sorted(known)) or "none installed"
        raise ConfigError(f"--metrics-exporter: unknown exporter '{name}' "
                          f"(available: {available})")
    return spec


def exporter_options(pairs: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["dd.api_key=x"]`` -> ``{"dd": {"api_key": "x"}}`` (``--metrics-exporter-opt``)."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        name, dot, option = key.strip().partition(".")
        if not sep or not dot or not name or not option:
            raise ConfigError(f"--metrics-exporter-opt expects NAME.KEY=VALUE, got {pair!r}")
        out.setdefault(name, {})[option] = value
    return out


def exporter_secrets(values: Mapping[str, Any], registry: Any) -> list[str]:
    """The values given to secret options of the plugin exporters (to mask them in logs)."""
    from .options import secret_values

    found: list[str] = []
    known = registry.components["metrics_exporter"]
    for name, options in exporter_options(values.get("metrics_exporter_opt") or ()).items():
        if name in known:
            found.extend(secret_values(known[name].options, options))
    return found


def start_adapters(pipeline: Any, values: Mapping[str, Any],
                   registry: Any = None) -> MetricAdapters:
    """Build the adapters ``values`` ask for and attach them to ``pipeline.metrics``."""
    return MetricAdapters(pipeline, build_adapters(values, registry)).start()
