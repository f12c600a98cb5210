"""The settings of a run that are not components: batch limits, workers, layout, retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .batcher import BatchLimits
from .errors import ConfigError
from .keys import DEFAULT_TEMPLATE, KeyTemplate
from .retry import RetryPolicy


@dataclass(frozen=True)
class PipelineSettings:
    """Everything about a run that is not a component. Defaults follow Firehose where it has one."""

    batch: BatchLimits = field(default_factory=BatchLimits)
    workers: int = 4
    key_template: str = DEFAULT_TEMPLATE
    error_key_template: str = "%Y/%m/%d/%H/{unix_ns}-{random}.{ext}"
    exit_when_idle: float | None = None
    write_retry: RetryPolicy = field(default_factory=RetryPolicy)
    ack_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=5, base_delay=0.1))
    partition_by: str = "processing"  # or "event:FIELD"
    on_missing_time: Literal["processing", "reject"] = "processing"
    max_open_partitions: int = 64
    on_partition_overflow: Literal["processing", "reject"] = "processing"
    target_file_size: int = 0  # bytes of encoded output per file; 0 = one file per partition
    manifest: bool = False
    receive_max: int = 1000
    poll_interval: float = 0.5

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.partition_by != "processing" and not (
            self.partition_by.startswith("event:") and len(self.partition_by) > 6
        ):
            raise ConfigError("--partition-by must be 'processing' or 'event:FIELD'")
        if self.max_open_partitions < 1:
            raise ConfigError("--max-open-partitions must be at least 1")
        KeyTemplate(self.key_template)  # validates
        KeyTemplate(self.error_key_template)

    @property
    def event_time_field(self) -> str | None:
        return self.partition_by[6:] if self.partition_by.startswith("event:") else None
