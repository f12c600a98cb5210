"""Run configuration: the command line, ``INGEST_*`` variables and a TOML file, merged.

The pipeline's own settings are declared once, as :data:`PIPELINE_OPTIONS`; the CLI flags
(``--batch-max-bytes``), the config file's ``[pipeline]`` keys (``batch_max_bytes``), the
validation and the defaults of :class:`PipelineSettings` and ``BatchLimits`` all come from
that list. Components are chosen by name and configured by their own
declared options. Precedence: command line, then environment, then config file, then defaults.

.. code-block:: toml

    [source]
    name = "sqs"
    queue_url = "https://sqs.us-east-1.amazonaws.com/123456789012/events"

    [sink]
    name = "s3"
    bucket = "my-lake"
    prefix = "events/"

    [pipeline]
    batch_max_bytes = "64MiB"
    batch_max_age = "5m"
    workers = 4
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .keys import DEFAULT_TEMPLATE
from .metric_adapters import check_otlp, check_prefix, check_rate, check_statsd, check_tags
from .options import Option, parse_options
from .plugins import Kind, Registry, bundled_with
from .settings import (
    PipelineSettings,
    check_key_template,
    check_partition_by,
    check_worker_bounds,
)

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = logging.getLogger(__name__)

COMPONENTS: tuple[tuple[str, Kind], ...] = (
    ("source", "source"), ("transformer", "transformer"), ("encoder", "encoder"),
    ("sink", "sink"), ("error_sink", "sink"),
)

PIPELINE_OPTIONS: tuple[Option, ...] = (
    Option("batch_max_bytes", "size", default="5MiB", min=1,
           help="flush when the batch holds this many input bytes"),
    Option("batch_max_records", "int", default=0, min=0,
           help="flush when the batch holds this many messages (0: off)"),
    Option("batch_max_age", "duration", default="5m",
           help="flush when the oldest message has waited this long (0: off)"),
    Option("workers", "int", default=4, min=1, max=256, choices=("auto",),
           help="concurrent flush workers; auto: sized at run time from the flush backlog, "
                "CPU and memory, between --min-workers and --max-workers"),
    Option("min_workers", "int", default=1, min=1, max=256,
           help="with --workers auto: fewest flush workers"),
    Option("max_workers", "int", default=8, min=1, max=256,
           help="with --workers auto: most flush workers (memory holds up to "
                "2 x this + 1 batches)"),
    Option("key_template", default=DEFAULT_TEMPLATE, check=check_key_template,
           help="object key: strftime codes, {uuid} {random} {unix_ns} {ext} {worker} "
                "{field:NAME}"),
    Option("partition_by", default="processing", check=check_partition_by,
           help="'processing' (flush time) or 'event:FIELD' (each record's own time)"),
    Option("on_missing_time", default="processing", choices=("processing", "reject"),
           help="records without a usable event time: processing-time partition, or reject"),
    Option("max_open_partitions", "int", default=64, min=1,
           help="most files one flush may fan out to; the rest go to an overflow partition"),
    Option("on_partition_overflow", default="processing", choices=("processing", "reject"),
           help="rows past max_open_partitions: overflow partition, or reject"),
    Option("target_file_size", "size", default=0,
           help="roll to a new file at about this encoded size (0: one file per partition)"),
    Option("max_file_age", "duration",
           help="with --target-file-size: commit an open file at this age (0: off) "
                "[default: --batch-max-age]"),
    Option("max_open_files", "int", default=64, min=1,
           help="with --target-file-size: files open at once; the least recently written "
                "commits first"),
    Option("max_held_bytes", "size", default="256MiB", min=1,
           help="with --target-file-size: bytes of messages waiting in open files (their bodies, "
                "or ~200 bytes each once a source that settles without the body let it go); "
                "past it every open file commits"),
    Option("memory_limit", "size",
           help="keep the process's resident memory below this: receiving pauses and batches "
                "shrink before it would pass (0: off) [default: 80% of the cgroup's memory.max "
                "when one is set, else off]"),
    Option("exit_when_idle", "duration",
           help="stop cleanly once the source has been empty this long"),
    Option("shutdown_timeout", "duration", default="60s", min=0,
           help="longest drain after SIGTERM/SIGHUP/SIGINT; then abort as a second Ctrl-C "
                "would (0: no limit)"),
    Option("manifest", "bool", default=False,
           help="write KEY.manifest.json with the source message ids of each file"),
    Option("max_deliveries", "int", default=10, min=1,
           help="a message rejected on this delivery or later goes to the error sink; without "
                "one it goes back to the source with growing delays and the run exits 1"),
    Option("write_attempts", "int", default=5, min=1, help="tries per file write"),
    Option("write_base_delay", "duration", default="500ms",
           help="first wait after a failed write; doubles each try"),
    Option("write_max_delay", "duration", default="30s", help="longest wait between write tries"),
    Option("ack_attempts", "int", default=5, min=1, help="tries per acknowledgement"),
    Option("ack_base_delay", "duration", default="200ms",
           help="first wait after a failed ack; doubles each try"),
    Option("ack_max_delay", "duration", default="5s", help="longest wait between ack tries"),
    Option("retry_jitter", "float", default=0.5, min=0, max=1,
           help="share of each retry wait that is random (0: exact, 1: full jitter)"),
    Option("log_level", default="INFO",
           choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), help="log level"),
    Option("log_format", default="text", choices=("text", "json"),
           help="text for people, json for log shippers (one object per line)"),
    Option("metrics_port", "int", min=0, max=65535,
           help="serve Prometheus /metrics and /healthz on this port"),
    Option("metrics_host", default="0.0.0.0",
           help="address the metrics server listens on (127.0.0.1: this machine only)"),
    Option("metrics_statsd", check=check_statsd,
           help="send counters, gauges and timings to a DogStatsD agent at HOST:PORT (UDP)"),
    Option("metrics_otlp", check=check_otlp,
           help="push metrics over OTLP/HTTP to URL (http://collector:4318 adds /v1/metrics; "
                "needs parquet-ingestor[otlp])"),
    Option("metrics_prefix", default="ingest", check=check_prefix,
           help="prefix of the metric names sent to DogStatsD and OTLP"),
    Option("metrics_tag", "list", check=check_tags,
           help="K:V tag of every metric sent to DogStatsD and OTLP (repeatable)"),
    Option("metrics_sample_rate", "float", default=1.0, max=1, check=check_rate,
           help="share of counter increments and timings sent to DogStatsD (the agent scales "
                "them back up)"),
    Option("metrics_interval", "duration", default="10s", min=0.01,
           help="how often gauges go to DogStatsD and metrics are pushed over OTLP"),
    Option("metrics_exporter", "list",
           help="metrics exporter a plugin registered (repeatable; see `ingest plugins`)"),
    Option("metrics_exporter_opt", "list",
           help="NAME.KEY=VALUE option of a --metrics-exporter (repeatable)"),
)


@dataclass
class ComponentChoice:
    """A component by name, with its raw (not yet validated) options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything a run needs, before validation: component choices and raw pipeline values."""

    source: ComponentChoice | None = None
    transformer: ComponentChoice | None = None
    encoder: ComponentChoice | None = None
    sink: ComponentChoice | None = None
    error_sink: ComponentChoice | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """The pipeline settings, typed and validated (ConfigError names the flag)."""
        values = parse_options(PIPELINE_OPTIONS, self.pipeline, "pipeline")
        check_worker_bounds(values["min_workers"], values["max_workers"], "--{}-workers")
        return values


def load_toml(path: str, registry: Registry | None = None) -> RunConfig:
    """Read a config file into a RunConfig; unknown sections and keys are errors.

    With ``registry``, relative values of ``path`` options resolve from the file's folder, so a
    config works from any working directory (the command line's stay relative to it)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config: {path!r} is not valid TOML: {exc}") from None
    config = RunConfig()
    for section, value in data.items():
        if section == "pipeline":
            if not isinstance(value, dict):
                raise ConfigError("--config: [pipeline] must be a table")
            config.pipeline = dict(value)
        elif section in dict(COMPONENTS):
            if isinstance(value, str):
                setattr(config, section, ComponentChoice(value))
            elif isinstance(value, dict) and isinstance(value.get("name"), str):
                options = {k: v for k, v in value.items() if k != "name"}
                if registry is not None:
                    kind = dict(COMPONENTS)[section]
                    options = _paths_from(Path(path).parent, registry, kind, value["name"], options)
                setattr(config, section, ComponentChoice(value["name"], options))
            else:
                raise ConfigError(f"--config: [{section}] needs a name = \"...\"")
        else:
            known = ", ".join(["pipeline", *dict(COMPONENTS)])
            raise ConfigError(f"--config: unknown section [{section}] (known: {known})")
    return config


def _paths_from(folder: Path, registry: Registry, kind: Kind, name: str,
                options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with each relative ``path``-type value joined to ``folder`` ('-' is stdin)."""
    spec = registry.components[kind].get(name)
    if spec is None:
        return options  # build_pipeline reports the unknown name
    paths = {opt.name for opt in spec.options if opt.type == "path"}
    resolved = dict(options)
    for key, value in options.items():
        if (key.strip().replace("-", "_") in paths and isinstance(value, str) and value
                and value != "-" and "://" not in value
                and not os.path.isabs(os.path.expanduser(value))):
            resolved[key] = os.path.join(folder, value)
    return resolved


def merge(base: RunConfig, over: RunConfig) -> RunConfig:
    """``over`` wins: a component named again replaces the name and adds/overrides options."""
    merged = RunConfig(pipeline={**base.pipeline, **over.pipeline})
    for attr, _ in COMPONENTS:
        low: ComponentChoice | None = getattr(base, attr)
        high: ComponentChoice | None = getattr(over, attr)
        if high is not None and not high.name:  # options only: for the component named below
            high = ComponentChoice(low.name if low else "", high.options)
        if high is None:
            setattr(merged, attr, low)
        elif low is None or low.name == high.name:
            options = {**(low.options if low else {}), **high.options}
            setattr(merged, attr, ComponentChoice(high.name, options))
        else:
            setattr(merged, attr, high)
    return merged


def settings_from(values: Mapping[str, Any]) -> PipelineSettings:
    """PipelineSettings from validated pipeline values."""
    return PipelineSettings.from_options(values)


def _with_sink_defaults(config: RunConfig, sink: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The pipeline ``values``, with the sink's ``pipeline_defaults`` where the run sets
    nothing (see :class:`~parquet_ingestor.interfaces.Sink`)."""
    suggested = getattr(sink, "pipeline_defaults", None)
    if not isinstance(suggested, Mapping) or not suggested:
        return values
    return dataclasses.replace(config, pipeline={**suggested, **config.pipeline}).values()


def secret_values(config: RunConfig, registry: Registry) -> list[str]:
    """The values given to secret options of the configured components (to mask in logs)."""
    from .options import secret_values as of

    found: list[str] = []
    for attr, kind in COMPONENTS:
        choice: ComponentChoice | None = getattr(config, attr)
        spec = registry.components[kind].get(choice.name) if choice else None
        if choice is not None and spec is not None:
            found.extend(of(spec.options, choice.options))
    from .metric_adapters import exporter_secrets

    found.extend(exporter_secrets(config.values(), registry))
    return found


def default_encoder(registry: Registry) -> str:
    """``parquet`` when its plugin is installed, else ``jsonl``."""
    return "parquet" if "parquet" in registry.components["encoder"] else "jsonl"


def _warn_jsonl_fallback(registry: Registry) -> None:
    """Say once per run that no encoder was chosen and Parquet is missing, so files are jsonl."""
    bundled = bundled_with("encoder", "parquet")
    hint = f"; for Parquet: {registry.missing_hint(bundled)}" if bundled else ""
    log.warning("no Parquet encoder here: writing JSON lines (.jsonl) files%s", hint)


@contextmanager
def _naming(attr: str) -> Iterator[None]:
    """Errors about the error sink say so: its messages would otherwise read "sink 's3' ..."."""
    try:
        yield
    except ConfigError as exc:
        if attr != "error_sink":
            raise
        raise ConfigError(f"--error-sink: {exc}") from None


def build_pipeline(config: RunConfig, registry: Registry) -> Pipeline:
    """Validate everything, then create the components and the pipeline (ConfigError on bad input)."""
    if config.source is None:
        raise ConfigError("no source given: use --source NAME (see `ingest plugins`)")
    if config.sink is None:
        raise ConfigError("no sink given: use --sink NAME (see `ingest plugins`)")
    defaults = {"transformer": "json", "encoder": default_encoder(registry)}
    for attr in ("source", "sink", "error_sink"):
        choice = getattr(config, attr)
        if choice is not None and not choice.name:
            flag = attr.replace("_", "-")
            raise ConfigError(f"--{flag}-opt given without --{flag}")
    transformer, encoder = (
        ComponentChoice(choice.name or defaults[attr], choice.options) if choice
        else ComponentChoice(defaults[attr])
        for attr, choice in (("transformer", config.transformer), ("encoder", config.encoder))
    )
    chosen = {"source": config.source, "transformer": transformer, "encoder": encoder,
              "sink": config.sink, "error_sink": config.error_sink}
    specs = {}
    for attr, kind in COMPONENTS:
        choice = chosen[attr]
        if choice is not None:
            with _naming(attr):
                spec = registry.get(kind, choice.name)
                spec.parse(choice.options)  # validate all before creating any
            specs[attr] = spec
    values = config.values()  # bad pipeline values fail before any component is created
    if (config.encoder is None or not config.encoder.name) and defaults["encoder"] == "jsonl":
        _warn_jsonl_fallback(registry)
    built = {}
    for attr, spec in specs.items():
        with _naming(attr):
            built[attr] = spec.create(chosen[attr].options)  # type: ignore[union-attr]
    from .pipeline import Pipeline  # the run's machinery, imported when a run is built

    settings = settings_from(_with_sink_defaults(config, built["sink"], values))
    return Pipeline(
        source=built["source"], sink=built["sink"], encoder=built["encoder"],
        transformer=built["transformer"], settings=settings,
        error_sink=built.get("error_sink"), hooks=registry.hook,
        names={attr: chosen[attr].name for attr in specs},  # type: ignore[union-attr]
    )
