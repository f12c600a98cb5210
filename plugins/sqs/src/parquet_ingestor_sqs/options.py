"""The SQS source's options, declared once, and the validated settings built from them.

``plugin.py`` imports this module at CLI start, so it must stay light: no boto3 here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from parquet_ingestor.errors import ConfigError
from parquet_ingestor.options import Option

WHERE = "source 'sqs'"
MAX_VISIBILITY = 43200  # SQS: a message can stay invisible at most 12 hours after it is received

SQS_OPTIONS: tuple[Option, ...] = (
    Option(
        "queue_url",
        required=True,
        help="URL of the queue, e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/events",
    ),
    Option("region", help="AWS region (default: taken from queue_url, else the AWS chain)"),
    Option(
        "endpoint_url",
        help="custom endpoint, e.g. http://localhost:4566 (AWS_ENDPOINT_URL works too)",
    ),
    Option(
        "wait_time",
        "duration",
        default="20s",
        min=0,
        max=20,
        help="long-poll wait of each ReceiveMessage call (whole seconds, 0-20)",
    ),
    Option(
        "max_messages",
        "int",
        default=10,
        min=1,
        max=10,
        help="messages asked for per ReceiveMessage call (1-10)",
    ),
    Option(
        "visibility_timeout",
        "duration",
        default="30s",
        min=1,
        max=MAX_VISIBILITY,
        help="lease length; leases are extended by this much before they lapse",
    ),
    Option(
        "pollers",
        "int",
        default=2,
        min=1,
        max=64,
        choices=("auto",),
        help="background long-poll threads (always 1 on FIFO queues, to keep order); auto: "
        "2 to start, then sized by the pipeline's autoscaler between 1 and max_pollers",
    ),
    Option(
        "max_pollers",
        "int",
        default=8,
        min=1,
        max=64,
        help="with pollers=auto: most long-poll threads",
    ),
    Option(
        "max_in_flight",
        "int",
        default=20000,
        min=1,
        help="messages received but not yet settled; polling pauses at this limit",
    ),
    Option(
        "max_in_flight_bytes",
        "size",
        default="256MiB",
        min=1,
        help="bytes of bodies received but not yet settled; polling pauses at this limit",
    ),
    Option(
        "attributes",
        "list",
        default="All",
        help="system and message attributes to fetch, e.g. SentTimestamp,trace_id (All = every one)",
    ),
    Option(
        "retry_delay",
        "duration",
        default="0s",
        min=0,
        max=MAX_VISIBILITY,
        help="how long a nacked message stays invisible before it is delivered again",
    ),
    Option(
        "unwrap",
        default="none",
        choices=("none", "sns"),
        help="sns: the body is an SNS notification; use its Message and MessageAttributes",
    ),
    Option(
        "check_queue",
        "bool",
        default=True,
        help="check at start that the queue exists (GetQueueAttributes)",
    ),
)

_BY_NAME = {opt.name: opt for opt in SQS_OPTIONS}

#: SQS system attributes (MessageSystemAttributeNames); anything else is a message attribute.
SYSTEM_ATTRIBUTES: tuple[str, ...] = (
    "All",
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
_SYSTEM_BY_KEY = {name.lower(): name for name in SYSTEM_ATTRIBUTES}
#: Always fetched: cheap, and the documented message attributes depend on them.
_ALWAYS = ("SentTimestamp", "ApproximateReceiveCount", "MessageGroupId")

_REGION_IN_URL = re.compile(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/", re.I)


@dataclass(frozen=True)
class SqsSettings:
    """Everything the source needs, validated; durations in seconds."""

    queue_url: str
    region: str | None = None
    endpoint_url: str | None = None
    wait_time: int = 20
    max_messages: int = 10
    visibility_timeout: int = 30
    pollers: int = 2  # to start with, when pollers_auto
    pollers_auto: bool = False
    max_pollers: int = 8
    max_in_flight: int = 20000
    max_in_flight_bytes: int = 256 << 20
    system_attributes: tuple[str, ...] = ("All",)
    message_attributes: tuple[str, ...] = ("All",)
    retry_delay: int = 0
    unwrap: str = "none"
    check_queue: bool = True

    @property
    def most_pollers(self) -> int:
        """Long-poll threads there can be at once."""
        return max(self.pollers, self.max_pollers) if self.pollers_auto else self.pollers

    @property
    def fifo(self) -> bool:
        return self.queue_url.rstrip("/").endswith(".fifo")

    @classmethod
    def from_options(cls, **raw: Any) -> SqsSettings:
        """Validate values (typed or text, as the factory gets them) against :data:`SQS_OPTIONS`."""
        values: dict[str, Any] = {}
        for name, value in raw.items():
            opt = _BY_NAME.get(name)
            if opt is None:
                raise ConfigError(f"{WHERE} has no option '{name}'")
            if value is None:
                value = opt.default
            values[name] = opt.parse(value, WHERE) if value is not None else None
        url = values.get("queue_url")
        if not url:
            raise ConfigError(f"{WHERE} needs option 'queue_url' ({_BY_NAME['queue_url'].help})")
        url = str(url).strip()
        if not url.startswith(("https://", "http://")) or url.count("/") < 4:
            raise ConfigError(
                f"{WHERE} option 'queue_url': expected a queue URL like "
                f"https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, got {url!r}"
            )
        system, message = split_attributes(values.get("attributes") or ["All"])
        most = int(values.get("max_pollers") or 8)
        region = values.get("region") or region_from_url(url)

        def seconds(name: str, default: float) -> int:
            value = values.get(name)
            return int(math.ceil(default if value is None else value))

        return cls(
            queue_url=url,
            region=region,
            endpoint_url=values.get("endpoint_url") or None,
            wait_time=seconds("wait_time", 20),
            max_messages=int(values.get("max_messages") or 10),
            visibility_timeout=seconds("visibility_timeout", 30),
            pollers=(min(2, most) if values.get("pollers") in (None, "auto")
                     else int(values["pollers"])),
            pollers_auto=values.get("pollers") == "auto",
            max_pollers=most,
            max_in_flight=int(values.get("max_in_flight") or 20000),
            max_in_flight_bytes=int(values.get("max_in_flight_bytes") or 256 << 20),
            system_attributes=system,
            message_attributes=message,
            retry_delay=seconds("retry_delay", 0),
            unwrap=values.get("unwrap") or "none",
            check_queue=values.get("check_queue") is not False,
        )


def split_attributes(names: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sort the ``attributes`` list into system attribute names and message attribute names.

    System names match case-insensitively, with or without underscores (``sent_timestamp``);
    ``All`` asks for every system and every message attribute.
    """
    system: list[str] = list(_ALWAYS)
    message: list[str] = []
    for name in names:
        known = _SYSTEM_BY_KEY.get(name.replace("_", "").lower())
        if known == "All":
            system.append("All")
            message.append("All")
        elif known is not None:
            system.append(known)
        else:
            message.append(name)
    return tuple(dict.fromkeys(system)), tuple(dict.fromkeys(message))


def region_from_url(url: str) -> str | None:
    """``https://sqs.eu-west-1.amazonaws.com/...`` -> ``eu-west-1``; None for other hosts."""
    match = _REGION_IN_URL.match(url)
    return match.group(1).lower() if match else None
