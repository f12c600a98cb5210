"""The settings of a run that are not components: batch limits, workers, layout, retries.

Their defaults and limits are declared once, as options (``config.PIPELINE_OPTIONS``): the
CLI flags, ``INGEST_*`` variables, the TOML ``[pipeline]`` table and :class:`PipelineSettings`
all read that declaration, so ``PipelineSettings()`` and a bare ``ingest`` agree.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .autoscale import AutoscalePolicy
from .batcher import BatchLimits
from .errors import ConfigError
from .keys import KeyTemplate
from .retry import RetryPolicy

#: How errors in settings given through the Python API name the setting.
WHERE = "PipelineSettings"


def check_key_template(template: str) -> None:
    """``Option.check`` of key templates: ValueError naming what is wrong."""
    try:
        KeyTemplate(template)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def check_partition_by(value: str) -> None:
    """``Option.check`` of ``partition_by``: ``processing`` or ``event:FIELD``."""
    if value != "processing" and not (value.startswith("event:") and len(value) > 6):
        raise ValueError(f"{value!r} is neither 'processing' nor 'event:FIELD'")


def check_worker_bounds(low: int, high: int, name: str = "--{}-workers", where: str = "") -> None:
    """``--min-workers`` above ``--max-workers`` is a ConfigError naming both (``name`` spells
    them: ``"--{}-workers"`` on the command line, ``"{}_workers"`` in the Python API)."""
    if low > high:
        raise ConfigError(f"{where}{name.format('min')} {low} is greater than "
                          f"{name.format('max')} {high}")


@functools.cache
def declared() -> Mapping[str, Any]:
    """The declared default of every pipeline option, parsed (``"5MiB"`` -> 5242880)."""
    from .config import PIPELINE_OPTIONS  # the declaration; config imports this module
    from .options import parse_options

    return parse_options(PIPELINE_OPTIONS, {}, "pipeline")


def _default(name: str) -> Any:
    return field(default_factory=lambda: declared()[name])


def _retry(prefix: str) -> Any:
    def make() -> RetryPolicy:
        d = declared()
        return RetryPolicy(d[f"{prefix}_attempts"], d[f"{prefix}_base_delay"],
                           d[f"{prefix}_max_delay"], d["retry_jitter"])

    return field(default_factory=make)


@dataclass(frozen=True)
class PipelineSettings:
    """Everything about a run that is not a component. Defaults follow Firehose where it has one;
    they are the CLI's (one declaration), and invalid values raise a ConfigError naming the
    setting (``PipelineSettings option 'workers': ...``)."""

    batch: BatchLimits = field(default_factory=BatchLimits)  # the declared batch_max_*
    workers: int | Literal["auto"] = _default("workers")  # "auto": the autoscaler sizes it
    min_workers: int = _default("min_workers")  # bounds of workers="auto"
    max_workers: int = _default("max_workers")
    key_template: str = _default("key_template")
    error_key_template: str = _default("key_template")
    exit_when_idle: float | None = None
    write_retry: RetryPolicy = _retry("write")
    ack_retry: RetryPolicy = _retry("ack")
    partition_by: str = _default("partition_by")  # or "event:FIELD"
    on_missing_time: Literal["processing", "reject"] = _default("on_missing_time")
    max_open_partitions: int = _default("max_open_partitions")
    on_partition_overflow: Literal["processing", "reject"] = _default("on_partition_overflow")
    target_file_size: int = _default("target_file_size")  # 0 = one file per partition
    max_file_age: float | None = None  # None: batch.max_age (files that outlive a batch)
    max_open_files: int = _default("max_open_files")
    max_held_bytes: int = _default("max_held_bytes")
    memory_limit: int | None = None  # None: 80% of the cgroup's memory.max if set; 0: off
    manifest: bool = _default("manifest")
    max_deliveries: int | None = _default("max_deliveries")  # None: no poison limit
    receive_max: int = 1000
    poll_interval: float = 0.5
    #: how the autoscaler decides (intervals, cooldowns, CPU and memory targets)
    autoscale: AutoscalePolicy = field(default_factory=AutoscalePolicy)

    def __post_init__(self) -> None:
        from .config import PIPELINE_OPTIONS

        options = {opt.name: opt for opt in PIPELINE_OPTIONS}
        for name, value in self.as_options().items():
            if value is not None:
                options[name].parse(value, WHERE)
        check_worker_bounds(self.min_workers, self.max_workers, "{}_workers", f"{WHERE}: ")
        try:
            KeyTemplate(self.error_key_template)
        except ConfigError as exc:
            raise ConfigError(f"{WHERE} option 'error_key_template': {exc}") from None

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> PipelineSettings:
        """Settings from parsed pipeline option values (``parse_options(PIPELINE_OPTIONS...)``)."""
        return cls(
            batch=BatchLimits(values["batch_max_bytes"], values["batch_max_records"],
                              values["batch_max_age"]),
            workers=values["workers"],
            min_workers=values["min_workers"],
            max_workers=values["max_workers"],
            key_template=values["key_template"],
            partition_by=values["partition_by"],
            on_missing_time=values["on_missing_time"],
            max_open_partitions=values["max_open_partitions"],
            on_partition_overflow=values["on_partition_overflow"],
            target_file_size=values["target_file_size"],
            max_file_age=values["max_file_age"],
            max_open_files=values["max_open_files"],
            max_held_bytes=values["max_held_bytes"],
            memory_limit=values["memory_limit"],
            exit_when_idle=values["exit_when_idle"],
            manifest=values["manifest"],
            max_deliveries=values["max_deliveries"],
            write_retry=RetryPolicy(values["write_attempts"], values["write_base_delay"],
                                    values["write_max_delay"], values["retry_jitter"]),
            ack_retry=RetryPolicy(values["ack_attempts"], values["ack_base_delay"],
                                  values["ack_max_delay"], values["retry_jitter"]),
        )

    def as_options(self) -> dict[str, Any]:
        """These settings as pipeline option values (the inverse of :meth:`from_options`)."""
        out = {
            "batch_max_bytes": self.batch.max_bytes,
            "batch_max_records": self.batch.max_records,
            "batch_max_age": self.batch.max_age,
            "workers": self.workers,
            "min_workers": self.min_workers,
            "max_workers": self.max_workers,
            "key_template": self.key_template,
            "partition_by": self.partition_by,
            "on_missing_time": self.on_missing_time,
            "max_open_partitions": self.max_open_partitions,
            "on_partition_overflow": self.on_partition_overflow,
            "target_file_size": self.target_file_size,
            "max_file_age": self.max_file_age,
            "max_open_files": self.max_open_files,
            "max_held_bytes": self.max_held_bytes,
            "memory_limit": self.memory_limit,
            "exit_when_idle": self.exit_when_idle,
            "manifest": self.manifest,
            "max_deliveries": self.max_deliveries,
        }
        for prefix, policy in (("write", self.write_retry), ("ack", self.ack_retry)):
            out[f"{prefix}_attempts"] = policy.attempts
            out[f"{prefix}_base_delay"] = policy.base_delay
            out[f"{prefix}_max_delay"] = policy.max_delay
        out["retry_jitter"] = self.write_retry.jitter
        return out

    @property
    def autoscaled(self) -> bool:
        """``workers="auto"``: the autoscaler sizes the flush workers at run time."""
        return self.workers == "auto"

    @property
    def worker_bounds(self) -> tuple[int, int]:
        """Fewest and most flush workers: ``(min_workers, max_workers)`` on auto, else the
        fixed count twice."""
        if self.workers == "auto":
            return self.min_workers, self.max_workers
        return self.workers, self.workers

    @property
    def file_age(self) -> float:
        """Seconds an open file may stay open (``max_file_age``, else ``batch.max_age``)."""
        return self.max_file_age if self.max_file_age is not None else self.batch.max_age

    @property
    def spans_batches(self) -> bool:
        """Files outlive a batch: with a target size, a file collects rows across flushes."""
        return self.target_file_size > 0

    @property
    def event_time_field(self) -> str | None:
        return self.partition_by[6:] if self.partition_by.startswith("event:") else None
