"""ArrowFrame: vectorized partition grouping, time ranges, take/slice."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from parquet_ingestor.records import ListFrame, truncate
from parquet_ingestor_parquet.encoder import ParquetEncoder
from parquet_ingestor_parquet.frame import ArrowFrame
from pq_helpers import json_lines

pytestmark = pytest.mark.timeout(60)
UTC = dt.UTC

RECORDS = [
    {"t": "2024-05-01T23:59:59.999Z", "c": "US"},
    {"t": "2024-05-02T00:00:00Z", "c": "US"},
    {"t": "2024-05-02T00:30:00+02:00", "c": "DE"},  # = 2024-05-01T22:30Z
    {"t": None, "c": "US"},
    {"c": "DE"},
    {"t": "garbage", "c": "US"},
    {"t": "2024-05-02T01:15:00Z", "c": None},
    {"t": "2024-05-02T01:45:00Z", "c": "US"},
]


def frame_of(records):
    return ParquetEncoder().decode(json_lines(records)).frame


@pytest.mark.parametrize("unit", ["year", "month", "day", "hour", "minute", "second"])
def test_group_rows_matches_the_python_reference(unit):
    frame = frame_of(RECORDS)
    reference = ListFrame(RECORDS, list(range(len(RECORDS)))).group_rows("t", unit, ["c"])
    assert frame.group_rows("t", unit, ["c"]) == reference


def test_group_rows_across_hours_and_days():
    groups = frame_of(RECORDS).group_rows("t", "hour", ["c"])
    h = lambda d, hour: dt.datetime(2024, 5, d, hour, tzinfo=UTC)  # noqa: E731
    assert groups == {
        (h(1, 23), ("US",)): [0],
        (h(2, 0), ("US",)): [1],
        (h(1, 22), ("DE",)): [2],
        (None, ("US",)): [3, 5],
        (None, ("DE",)): [4],
        (h(2, 1), (None,)): [6],
        (h(2, 1), ("US",)): [7],
    }
    for when, _ in groups:
        assert when is None or when.utcoffset() == dt.timedelta(0)
    days = frame_of(RECORDS).group_rows("t", "day", [])
    assert days == {(dt.datetime(2024, 5, 1, tzinfo=UTC), ()): [0, 2],
                    (dt.datetime(2024, 5, 2, tzinfo=UTC), ()): [1, 6, 7],
                    (None, ()): [3, 4, 5]}


def test_group_rows_on_realistic_events(events):
    lines = events(5000)
    decoded = ParquetEncoder().decode(json_lines([json.loads(x) for x in lines]))
    groups = decoded.frame.group_rows("created_at", "hour", ["country", "type"])
    assert sum(len(v) for v in groups.values()) == 5000
    for (when, (country, kind)), rows in list(groups.items())[:50]:
        for row in rows:
            event = json.loads(lines[row])
            stamp = dt.datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
            assert truncate(stamp, "hour") == when
            assert (event["country"], event["type"]) == (country, kind)


def test_time_column_kinds():
    """Arrow timestamps (naive = UTC), epoch seconds and milliseconds, and a missing column."""
    when = dt.datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)
    table = pa.table({
        "naive": pa.array([when.replace(tzinfo=None)], pa.timestamp("ms")),
        "aware": pa.array([when], pa.timestamp("us", "Europe/Paris")),
        "secs": [int(when.timestamp())],
        "millis": [int(when.timestamp() * 1000)],
        "date": pa.array([when.date()], pa.date32()),
    })
    frame = ArrowFrame(table, [0])
    for column in ("naive", "aware", "secs", "millis"):
        assert list(frame.group_rows(column, "minute", [])) == [
            (dt.datetime(2024, 5, 1, 10, 20, tzinfo=UTC), ())], column
    assert list(frame.group_rows("date", "day", [])) == [(dt.datetime(2024, 5, 1, tzinfo=UTC), ())]
    assert list(frame.group_rows("nope", "hour", ["nope"])) == [(None, (None,))]
    assert list(frame.group_rows(None, "hour", [])) == [(None, ())]


def test_time_range():
    frame = frame_of(RECORDS)
    assert frame.time_range("t") == (dt.datetime(2024, 5, 1, 22, 30, tzinfo=UTC),
                                     dt.datetime(2024, 5, 2, 1, 45, tzinfo=UTC))
    assert frame.time_range("c") is None
    assert frame.take([3, 4]).time_range("t") is None


def test_take_and_slice_keep_sources():
    decoded = ParquetEncoder().decode(json_lines(RECORDS))
    frame = ArrowFrame(decoded.frame.table, [10 + i for i in range(len(RECORDS))])
    taken = frame.take([7, 0, 2])
    assert list(taken.sources) == [17, 10, 12]
    assert taken.table.column("c").to_pylist() == ["US", "US", "DE"]
    part = frame.slice(2, 5)
    assert list(part.sources) == [12, 13, 14] and len(part) == 3
    assert len(frame.slice(6, 100)) == 2
