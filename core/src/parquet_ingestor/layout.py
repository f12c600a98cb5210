"""Layout: which partition each row of a batch goes to, and each file's key and metadata."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple

from . import eventtime
from .errors import PluginError
from .interfaces import Frame
from .keys import KeyTemplate
from .settings import PipelineSettings

log = logging.getLogger("parquet_ingestor")

#: The partition field value of rows past ``max_open_partitions`` (on_partition_overflow).
OVERFLOW = "__overflow__"


class Partition(NamedTuple):
    """The rows of one output partition: its time, its field values, the rows, and their
    earliest and latest event time (None without event-time partitioning or usable times)."""

    when: datetime
    values: dict[str, Any]
    frame: Frame
    span: tuple[datetime, datetime] | None = None


class Layout:
    """Partitions rows (event or processing time, key fields) and names files by the key
    template; the error sink's keys too."""

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self.keys = KeyTemplate(settings.key_template)
        self.error_keys = KeyTemplate(settings.error_key_template)

    def partition(self, frame: Frame, rejected: dict[int, str], now: datetime) -> list[Partition]:
        """Split a frame into (partition time, field values, rows) per output partition: the
        frame groups its rows by equal values, the rules of :mod:`eventtime` read the times.

        Rows rejected by the layout (no event time, too many partitions) are added to
        ``rejected`` (batch index -> reason).
        """
        time_field = self.settings.event_time_field
        fields = self.keys.fields
        if not time_field and not fields:
            return [Partition(now, {}, frame)]
        unit = self.keys.time_unit
        now_key = eventtime.floor(now, unit)
        width = eventtime.bucket_width(unit) if time_field else 0
        pieces: dict[tuple[datetime, tuple[Any, ...]], list[Sequence[int]]] = {}
        spans: dict[tuple[datetime, tuple[Any, ...]], list[tuple[datetime, datetime] | None]] = {}
        if not callable(getattr(frame, "group", None)):
            raise PluginError(f"the encoder's frames ({type(frame).__name__}) have no group(): "
                              "they cannot be partitioned by fields or event time "
                              "(docs/plugins.md, \"The four protocols\")")
        for group in frame.group(fields, time_field, width, eventtime.micros):
            when = eventtime.bucket(group, unit) if time_field else None
            if time_field and when is None and self.settings.on_missing_time == "reject":
                for row in group.rows:
                    rejected.setdefault(frame.sources[row],
                                        f"no usable event time in field '{time_field}'")
                continue
            key = (when or now_key, group.values)
            pieces.setdefault(key, []).append(group.rows)
            spans.setdefault(key, []).append(eventtime.group_span(group))
        groups = {key: rows[0] if len(rows) == 1 else sorted(chain.from_iterable(rows))
                  for key, rows in pieces.items()}
        limit = self.settings.max_open_partitions
        if len(groups) > limit:
            ordered = sorted(groups.items(), key=lambda kv: len(kv[1]), reverse=True)
            reject = self.settings.on_partition_overflow == "reject"
            keep = limit if reject else limit - 1  # leave room for the overflow partition
            kept = dict(ordered[:keep])
            overflow_rows = [row for _, rows in ordered[keep:] for row in rows]
            if reject:
                for row in overflow_rows:
                    rejected.setdefault(frame.sources[row],
                                        f"more than {limit} partitions in one flush")
            else:
                log.warning("%d partitions in one flush; %d rows go to the overflow partition",
                            len(groups), len(overflow_rows))
                key = (now_key, (OVERFLOW,) * len(fields))
                kept[key] = sorted([*kept.get(key, ()), *overflow_rows])
                spans[key] = [s for k, _ in ordered[keep:] for s in spans[k]] + spans.get(key, [])
            groups = kept
        out: list[Partition] = []
        for (when, values), rows in groups.items():
            subset = frame if len(rows) == len(frame) else frame.take(rows)
            span = eventtime.merge_spans(spans[(when, values)]) if time_field else None
            out.append(Partition(when, dict(zip(fields, values, strict=True)), subset, span))
        return out

    def split(self, rows: int, bytes_per_row: float) -> int:
        """Rows per file so each is about ``target_file_size`` (all rows when it is 0)."""
        target = self.settings.target_file_size
        files = max(1, math.ceil(bytes_per_row * rows / target)) if target else 1
        return math.ceil(rows / files)

    def key(self, when: datetime, extension: str, values: Mapping[str, Any], worker: int) -> str:
        return self.keys.render(when, extension, values, worker)

    def error_key(self, now: datetime, worker: int) -> str:
        return self.error_keys.render(now, "jsonl", {}, worker)


def without(frame: Frame, rejected: Mapping[int, str]) -> Frame:
    """``frame`` minus the rows of rejected messages."""
    keep = [i for i, src in enumerate(frame.sources) if src not in rejected]
    return frame if len(keep) == len(frame) else frame.take(keep)
