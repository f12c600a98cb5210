"""Event time, the rules in one place: what counts as an instant, its partition bucket, a span.

Frames hold no rules. A frame groups its rows (:meth:`~parquet_ingestor.interfaces.Frame.group`)
by whole epoch seconds floored to a bucket width: values it already holds as instants (an Arrow
timestamp column) it reads itself; any other value it hands to :func:`micros` (once per distinct
value). This module turns the buckets into partition times, so every encoder partitions alike:

* **An instant** is a ``datetime`` (a naive one is UTC), ISO-8601 text (``Z`` or an offset such
  as ``+02:00``, fractional seconds, ``T`` or a space; without a zone: UTC), or an epoch number:
  seconds, or milliseconds when its magnitude is above :data:`EPOCH_MS_THRESHOLD`.
* **Unusable**: missing, null, booleans, text that is not ISO-8601, and instants outside the
  years 1..9999. Such rows get ``None``; the layout then rejects them or uses the receive time.
* **Buckets**: ``second minute hour day`` are fixed widths of epoch seconds, so a frame floors
  them by integer division; ``month`` and ``year`` are floored on the calendar here, from the
  few distinct day buckets.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .interfaces import Frame, FrameGroup

#: Partition grains, coarsest first (the key template's strftime codes pick one).
UNITS = ("year", "month", "day", "hour", "minute", "second")
#: Epoch numbers whose magnitude is above this are milliseconds, below it seconds.
EPOCH_MS_THRESHOLD = 1e11

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WIDTH = {"year": 86_400, "month": 86_400, "day": 86_400, "hour": 3_600, "minute": 60,
          "second": 1}
_MICROSECOND = timedelta(microseconds=1)
_fromisoformat = datetime.fromisoformat
_FLOOR = {
    "year": dict(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
    "month": dict(day=1, hour=0, minute=0, second=0, microsecond=0),
    "day": dict(hour=0, minute=0, second=0, microsecond=0),
    "hour": dict(minute=0, second=0, microsecond=0),
    "minute": dict(second=0, microsecond=0),
    "second": dict(microsecond=0),
}


def instant(value: Any) -> datetime | None:
    """An event time read from a raw value (rules above), as an aware UTC datetime, or None."""
    kind = type(value)
    try:
        if kind is str:
            try:  # the common case first: one call, ~0.2 us
                parsed = _fromisoformat(value)
            except ValueError:
                text = value.strip()
                if text.endswith(("Z", "z")):
                    text = text[:-1] + "+00:00"
                parsed = _fromisoformat(text)
            zone = parsed.tzinfo
            if zone is None:
                return parsed.replace(tzinfo=UTC)
            return parsed if zone is UTC else parsed.astimezone(UTC)
        if kind is int or kind is float or (
                isinstance(value, int | float) and not isinstance(value, bool)):
            scaled = value * (1_000 if abs(value) > EPOCH_MS_THRESHOLD else 1_000_000)
            return from_micros(round(scaled))
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def micros(value: Any) -> int | None:
    """:func:`instant` in whole epoch microseconds: what a frame calls on the values it does not
    hold as instants."""
    when = instant(value)
    return None if when is None else (when - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime | None:
    """Epoch microseconds as an aware UTC datetime; None outside the years 1..9999."""
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None


def epoch_micros(when: datetime) -> int:
    """Whole epoch microseconds of ``when`` (a naive datetime's reading taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // _MICROSECOND


def floor(when: datetime, unit: str) -> datetime:
    """``when`` floored to ``unit`` on the calendar (UTC)."""
    return when.replace(**_FLOOR[unit])  # type: ignore[arg-type]


def truncate(when: datetime | None, unit: str) -> datetime | None:
    """:func:`floor`, passing None through."""
    return None if when is None else floor(when, unit)


def bucket_width(unit: str) -> int:
    """The width in seconds a frame floors instants to for ``unit`` (a day for month/year)."""
    try:
        return _WIDTH[unit]
    except KeyError:
        raise ValueError(f"time unit must be one of {', '.join(UNITS)}, got {unit!r}") from None


def bucket(group: FrameGroup, unit: str) -> datetime | None:
    """The partition time of a group's rows at ``unit``; None when their time is unusable."""
    if group.epoch is None:
        return None
    when = from_micros(group.epoch[0] * 1_000_000)
    return None if when is None else floor(when, unit)


def group_span(group: FrameGroup) -> tuple[datetime, datetime] | None:
    """The earliest and latest event time of a group's rows; None when none is usable."""
    if group.epoch is None:
        return None
    low, high = from_micros(group.epoch[1]), from_micros(group.epoch[2])
    return None if low is None or high is None else (low, high)


def merge_spans(
    spans: Iterable[tuple[datetime, datetime] | None],
) -> tuple[datetime, datetime] | None:
    """The span covering every given span (None ones skipped)."""
    low: datetime | None = None
    high: datetime | None = None
    for span in spans:
        if span is None:
            continue
        low = span[0] if low is None else min(low, span[0])
        high = span[1] if high is None else max(high, span[1])
    return None if low is None or high is None else (low, high)


def span(frame: Frame, time_field: str) -> tuple[datetime, datetime] | None:
    """Earliest and latest usable event time in ``time_field`` (a file's metadata)."""
    groups = frame.group((), time_field, 0, micros)
    if any(g.epoch is not None and group_span(g) is None for g in groups):
        groups = frame.group((), time_field, _WIDTH["day"], micros)  # leave out-of-range days out
    return merge_spans(group_span(g) for g in groups)
