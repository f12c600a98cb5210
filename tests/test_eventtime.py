"""The event-time rules, once, in the core (eventtime.py): what is an instant, buckets, spans.

Every encoder's frames meet them through the EncoderContract's partition tests (jsonl here in
test_contracts_builtins.py, parquet in test_contracts_bundled.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from parquet_ingestor import eventtime
from parquet_ingestor.interfaces import FrameGroup
from parquet_ingestor.records import ListFrame

MAY1 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T10:20:30Z", MAY1.replace(hour=10, minute=20, second=30)),
    ("2024-05-01T10:20:30z", MAY1.replace(hour=10, minute=20, second=30)),
    (" 2024-05-01 10:20:30.250+02:00 ", MAY1.replace(hour=8, minute=20, second=30,
                                                      microsecond=250_000)),
    ("2024-05-01T00:30:00-0130", MAY1.replace(hour=2)),
    ("2024-05-01T10:20:30", MAY1.replace(hour=10, minute=20, second=30)),  # naive: UTC
    ("2024-05-01", MAY1),  # a date: its midnight, UTC
    (1714521600, MAY1),  # epoch seconds
    (1714521600.5, MAY1.replace(microsecond=500_000)),
    (1714521600123, MAY1.replace(microsecond=123_000)),  # above 1e11: milliseconds
    (99_999_999_999, datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)),  # just below: seconds
    (100_000_000_001, datetime(1973, 3, 3, 9, 46, 40, 1000, tzinfo=UTC)),  # just above: ms
    (-86401, datetime(1969, 12, 30, 23, 59, 59, tzinfo=UTC)),
    (0, eventtime.EPOCH),
    (datetime(2024, 5, 1, 2, tzinfo=timezone(timedelta(hours=2))), MAY1),
    (datetime(2024, 5, 1), MAY1),  # a naive datetime: UTC
])
def test_instants(value, expected):
    assert eventtime.instant(value) == expected
    assert eventtime.instant(value).tzinfo is UTC


@pytest.mark.parametrize("value", [
    None, True, False, "", "garbage", "10:20:30", "2024-13-01T00:00:00Z", "1714521600",
    253402300800000,  # year 10000, in ms
    10**20, -(10**20), float("nan"), float("inf"), [1714521600], {"t": 1}, b"2024-05-01",
])
def test_values_that_are_not_instants(value):
    assert eventtime.instant(value) is None


@pytest.mark.parametrize(("unit", "expected"), [
    ("year", datetime(2024, 1, 1, tzinfo=UTC)),
    ("month", datetime(2024, 5, 1, tzinfo=UTC)),
    ("day", datetime(2024, 5, 17, tzinfo=UTC)),
    ("hour", datetime(2024, 5, 17, 13, tzinfo=UTC)),
    ("minute", datetime(2024, 5, 17, 13, 45, tzinfo=UTC)),
    ("second", datetime(2024, 5, 17, 13, 45, 59, tzinfo=UTC)),
])
def test_buckets_from_epoch_groups_and_values_read(unit, expected):
    when = datetime(2024, 5, 17, 13, 45, 59, 999_999, tzinfo=UTC)
    width = eventtime.bucket_width(unit)
    seconds = int(when.timestamp()) // width * width  # what a frame hands over
    micros = eventtime.epoch_micros(when)
    assert eventtime.bucket(FrameGroup((), [0], (seconds, micros, micros)), unit) == expected
    assert eventtime.micros(when.isoformat()) == micros
    from_ms = eventtime.from_micros(eventtime.micros(micros // 1000))  # epoch milliseconds
    assert from_ms is not None and eventtime.floor(from_ms, unit) == expected


def test_unusable_groups_have_no_bucket_and_no_span():
    group = FrameGroup((), [0])
    assert eventtime.bucket(group, "hour") is None
    assert eventtime.group_span(group) is None
    far = 300_000 * 365 * 86_400  # an Arrow timestamp may hold year ~300000
    group = FrameGroup((), [0], (far, far * 10**6, far * 10**6))
    assert eventtime.bucket(group, "day") is None
    assert eventtime.group_span(group) is None
    for value in (None, "garbage", True, 10**20):
        assert eventtime.micros(value) is None


def test_bucket_width_names_the_units():
    assert [eventtime.bucket_width(u) for u in eventtime.UNITS] == [86400, 86400, 86400, 3600,
                                                                    60, 1]
    with pytest.raises(ValueError, match="time unit must be one of year, month"):
        eventtime.bucket_width("week")


def test_spans_merge():
    a, b, c = (MAY1 + timedelta(hours=h) for h in (1, 2, 3))
    assert eventtime.merge_spans([None, (b, c), (a, b), None]) == (a, c)
    assert eventtime.merge_spans([None]) is None


def test_list_frame_reads_every_time_once_and_groups_by_bucket():
    rows = [{"t": 1, "k": [1, 2]}, {"t": True, "k": [1, 2]}, {"t": 1.0, "k": [1, 2]},
            {"t": "2024-05-01T10:59:00Z", "k": {"a": 1}},
            {"t": datetime(2024, 5, 1, 10, 1), "k": {"a": 1}}, {"k": None},
            {"t": "garbage", "k": None}, {"t": 1.5, "k": [1, 2]}]
    seen = []

    def read(value):
        seen.append(value)
        return eventtime.micros(value)

    groups = ListFrame(rows, list(range(len(rows)))).group(["k"], "t", 3600, read)
    assert seen == [r["t"] for r in rows if r.get("t") is not None]
    found = {(g.values, g.epoch): list(g.rows) for g in groups}
    hour = int(datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp())
    assert found == {
        (((1, 2),), (0, 1_000_000, 1_500_000)): [0, 2, 7],
        (((1, 2),), None): [1],
        (((("a", 1),),), (hour, (hour + 60) * 10**6, (hour + 59 * 60) * 10**6)): [3, 4],
        ((None,), None): [5, 6],
    }
    assert ListFrame(rows, list(range(len(rows)))).group([], "t") == [
        FrameGroup((), list(range(len(rows))))]  # without a reader no time is usable


def test_a_frame_without_group_fails_its_flush_with_a_line_that_says_why():
    """A third-party frame written before ``group`` joined the Frame protocol: the flush fails
    (its messages are released) with one line naming the frame, not an AttributeError."""
    import parquet_ingestor
    from parquet_ingestor.errors import PluginError
    from parquet_ingestor.layout import Layout
    from parquet_ingestor.settings import PipelineSettings

    assert parquet_ingestor.FrameGroup is FrameGroup  # public, for encoder authors

    class OldFrame:
        sources = [0, 1]

        def __len__(self) -> int:
            return 2

    layout = Layout(PipelineSettings(key_template="{field:country}/{uuid}.{ext}"))
    with pytest.raises(PluginError, match=r"frames \(OldFrame\) have no group\(\)"):
        layout.partition(OldFrame(), {}, MAY1)  # type: ignore[arg-type]
    # nothing to partition by: such a frame still works
    [part] = Layout(PipelineSettings(key_template="{uuid}.{ext}")).partition(
        OldFrame(), {}, MAY1)  # type: ignore[arg-type]
    assert len(part.frame) == 2
