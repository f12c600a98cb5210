"""ArrowFrame: vectorized grouping for the core's partitions and time spans, take/slice."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from parquet_ingestor import eventtime
from parquet_ingestor.interfaces import FrameGroup
from parquet_ingestor.records import ListFrame
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


CLEAN = [r for r in RECORDS if r.get("t") != "garbage"]  # every time an instant: a timestamp


def frame_of(records):
    return ParquetEncoder().decode(json_lines(records)).frame


def partitions(frame, time_field, unit, fields=()):
    """{(partition time, values): rows}, as the core's layout reads the frame's groups."""
    out = {}
    width = eventtime.bucket_width(unit) if time_field else 0
    for group in frame.group(fields, time_field, width, eventtime.micros):
        when = eventtime.bucket(group, unit) if time_field else None
        out.setdefault((when, group.values), []).extend(group.rows)
    return {key: sorted(rows) for key, rows in out.items()}


@pytest.mark.parametrize("unit", eventtime.UNITS)
@pytest.mark.parametrize("records", [RECORDS, CLEAN], ids=["text", "timestamps"])
def test_groups_match_the_python_frame(unit, records):
    frame = frame_of(records)
    assert pa.types.is_timestamp(frame.table.column("t").type) == (records is CLEAN)
    reference = partitions(ListFrame(records, list(range(len(records)))), "t", unit, ["c"])
    assert partitions(frame, "t", unit, ["c"]) == reference


def test_a_timestamp_column_is_grouped_by_integer_buckets():
    groups = frame_of(CLEAN).group(["c"], "t", 3600, read=None)  # timestamps: no reading
    epochs = sorted(g.epoch for g in groups if g.epoch)
    assert [e[0] for e in epochs] == [1714600800, 1714604400, 1714608000, 1714611600,
                                      1714611600]
    assert epochs[0][1:] == (1714602600_000000, 1714602600_000000)  # 22:30Z, from +02:00
    assert sorted(g.rows for g in groups if not g.epoch) == [[3], [4]]


def test_other_columns_are_read_once_per_distinct_value():
    seen = []

    def read(value):
        seen.append(value)
        return eventtime.micros(value)

    frame = frame_of(RECORDS + RECORDS)
    assert frame.table.column("t").type == pa.string()
    groups = frame.group(["c"], "t", 3600, read)
    assert sorted(seen) == sorted({r["t"] for r in RECORDS if r.get("t") is not None})
    assert sum(len(g.rows) for g in groups) == 2 * len(RECORDS)
    tags = ArrowFrame(pa.table({"t": [["a"], None, ["a"]]}), [0, 1, 2])  # not encodable
    assert tags.group([], "t", 60, read) == [FrameGroup((), [0, 1, 2])]


def test_group_rows_on_realistic_events(events):
    lines = events(5000)
    decoded = ParquetEncoder().decode(json_lines([json.loads(x) for x in lines]))
    groups = partitions(decoded.frame, "created_at", "hour", ["country", "type"])
    assert sum(len(v) for v in groups.values()) == 5000
    for (when, (country, kind)), rows in list(groups.items())[:50]:
        for row in rows:
            event = json.loads(lines[row])
            stamp = dt.datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
            assert eventtime.floor(stamp, "hour") == when
            assert (event["country"], event["type"]) == (country, kind)


def test_time_column_kinds():
    """Arrow timestamps (naive = UTC), epoch seconds and milliseconds, dates, before 1970."""
    when = dt.datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)
    table = pa.table({
        "naive": pa.array([when.replace(tzinfo=None)], pa.timestamp("ms")),
        "aware": pa.array([when], pa.timestamp("us", "Europe/Paris")),
        "nanos": pa.array([when], pa.timestamp("ns", "UTC")),
        "secs": [int(when.timestamp())],
        "millis": [int(when.timestamp() * 1000)],
        "date": pa.array([when.date()], pa.date32()),
    })
    frame = ArrowFrame(table, [0])
    for column in ("naive", "aware", "nanos", "secs", "millis"):
        assert list(partitions(frame, column, "minute")) == [
            (dt.datetime(2024, 5, 1, 10, 20, tzinfo=UTC), ())], column
    assert list(partitions(frame, "date", "day")) == [(dt.datetime(2024, 5, 1, tzinfo=UTC), ())]
    assert list(partitions(frame, "nope", "hour", ["nope"])) == [(None, (None,))]
    assert list(partitions(frame, None, "hour")) == [(None, ())]
    before = ArrowFrame(pa.table({"t": pa.array([-1, -3600, -3601], pa.timestamp("s"))}),
                        [0, 1, 2])
    hours = partitions(before, "t", "hour")
    assert hours == {(dt.datetime(1969, 12, 31, 23, tzinfo=UTC), ()): [0, 1],
                     (dt.datetime(1969, 12, 31, 22, tzinfo=UTC), ()): [2]}


def test_time_span():
    frame = frame_of(CLEAN)
    assert eventtime.span(frame, "t") == (dt.datetime(2024, 5, 1, 22, 30, tzinfo=UTC),
                                          dt.datetime(2024, 5, 2, 1, 45, tzinfo=UTC))
    assert eventtime.span(frame.take([3, 4]), "t") is None
    far = ArrowFrame(pa.table({"t": pa.array([0, 10**17, None], pa.timestamp("ms"))}), [0, 1, 2])
    assert eventtime.span(far, "t") == (eventtime.EPOCH, eventtime.EPOCH)  # year 3e6: left out


def test_take_and_slice_keep_sources():
    decoded = ParquetEncoder().decode(json_lines(RECORDS))
    frame = ArrowFrame(decoded.frame.table, [10 + i for i in range(len(RECORDS))])
    taken = frame.take([7, 0, 2])
    assert list(taken.sources) == [17, 10, 12]
    assert taken.table.column("c").to_pylist() == ["US", "US", "DE"]
    part = frame.slice(2, 5)
    assert list(part.sources) == [12, 13, 14] and len(part) == 3
    assert len(frame.slice(6, 100)) == 2


@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
def test_a_file_takes_frames_from_before_a_column_was_added_not_after(engine: str) -> None:
    """``fits``: a frame missing a column of the file goes in (nulls); one with a column or a
    struct key the file lacks does not, and writing it anyway raises instead of dropping it."""
    import io

    import pyarrow.parquet as pq

    wide = pa.table({"id": [1], "extra": ["x"], "ctx": pa.array([{"a": 1}])})
    narrow = pa.table({"id": [2]})
    wider_struct = pa.table({"id": [3], "ctx": pa.array([{"a": 3, "b": 4}])})
    stream = io.BytesIO()
    writer = ParquetEncoder(engine=engine).open(stream, ArrowFrame(wide, [0]))
    writer.write(ArrowFrame(wide, [0]))
    assert writer.fits(ArrowFrame(narrow, [1]))
    writer.write(ArrowFrame(narrow, [1]))
    assert not writer.fits(ArrowFrame(pa.table({"id": [3], "new": [1.5]}), [2]))
    assert not writer.fits(ArrowFrame(wider_struct, [2]))
    with pytest.raises(ValueError, match="does not fit"):
        writer.write(ArrowFrame(pa.table({"id": [3], "new": [1.5]}), [2]))
    writer.close({})
    back = pq.read_table(io.BytesIO(stream.getvalue())).to_pylist()
    assert [(r["id"], r["extra"]) for r in back] == [(1, "x"), (2, None)]
