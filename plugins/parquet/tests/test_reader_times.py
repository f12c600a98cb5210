"""pyarrow's JSON reader types date-like text as timestamps on its own (dropping offsets, turning
dates into midnight). Whatever path a line takes (the whole batch, a piece split off around a
bad line, a line parsed again without the declared types), the value is judged as the text it
was: an instant with a zone in a timestamp column, exact text elsewhere, rejected in a number
column. Written, then read back with pyarrow."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow.parquet as pq
from parquet_ingestor.records import JsonLines
from parquet_ingestor_parquet.encoder import ParquetEncoder
from pq_helpers import write_file

UTC = dt.UTC
EPOCH = 1_700_000_000
AT_EPOCH = dt.datetime.fromtimestamp(EPOCH, UTC)


def batches(tmp_path: Any, encoder: ParquetEncoder, *batches: list[Any]
            ) -> tuple[list[dict[str, Any]], list[int]]:
    """Each batch decoded, written and read back: (rows of every batch, rejected line ids);
    a line's id is its batch's number * 100 + its index."""
    rows: list[dict[str, Any]] = []
    rejected: list[int] = []
    for number, records in enumerate(batches):
        body = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
        decoded = encoder.decode(JsonLines(body, [number * 100 + i for i in range(len(body))]))
        rejected += [source for source, _ in decoded.rejected]
        if len(decoded.frame):
            path = write_file(encoder, decoded.frame, tmp_path / f"{number}.parquet")
            rows += pq.read_table(path).to_pylist()
    return rows, rejected


def test_date_text_in_an_int_column_is_rejected_once_the_field_looked_like_a_time(tmp_path):
    encoder = ParquetEncoder()
    rows, rejected = batches(tmp_path, encoder, [{"n": 1}], [{"n": 2}, {"n": "2024-05-01"}],
                             [{"n": "2024-05-02"}], [{"n": 3}, {"n": "2024-05-03T01:02:03Z"}])
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert rejected == [101, 200, 301]


def test_text_beside_an_epoch_time_field_keeps_its_exact_spelling(tmp_path):
    """An epoch number in a time field declared as text makes the line parse again without
    the declared types: the text fields beside it, at any depth, stay as they came."""
    encoder = ParquetEncoder(time_fields="t")
    first = {"t": "2024-05-01T00:00:00Z", "s": "x", "l": ["x"], "o": {"d": "x"}}
    dates = {"s": "2024-05-01", "l": ["2024-05-01", "2024-05-01T01:02:03+02:00"],
             "o": {"d": "2024-05-01 01:02"}}
    rows, rejected = batches(tmp_path, encoder, [first], [{"t": EPOCH, **dates}],
                             [{"t": EPOCH * 1000, **dates}, {"t": "2024-05-01T00:00:00Z"}])
    assert rejected == []
    assert rows[1:] == [{"t": AT_EPOCH, **dates}, {"t": AT_EPOCH, **dates},
                        {"t": dt.datetime(2024, 5, 1, tzinfo=UTC), "s": None, "l": None,
                         "o": None}]


def test_an_event_time_number_still_converts_next_to_a_date_text(tmp_path):
    """The --partition-by event:FIELD field takes epoch numbers; a date beside it stays text."""
    encoder = ParquetEncoder()
    encoder.start(type("Context", (), {"event_time_field": "ts"})())
    rows, rejected = batches(tmp_path, encoder, [{"ts": EPOCH, "d": "2024-05-01"}],
                             [{"ts": EPOCH, "d": "2024-05-02"},
                              {"ts": "2024-05-01T00:00:00Z", "d": "x"}])
    assert rejected == []
    assert rows == [{"ts": AT_EPOCH, "d": "2024-05-01"}, {"ts": AT_EPOCH, "d": "2024-05-02"},
                    {"ts": dt.datetime(2024, 5, 1, tzinfo=UTC), "d": "x"}]


def test_instants_in_a_first_batch_split_around_a_conflict_are_never_reformatted(tmp_path):
    """The fuzz finding, and its nested cousins: a field that turns to text in one piece made
    the other piece's line parse again without declared types, where the reader typed times."""
    rows, rejected = batches(tmp_path, ParquetEncoder(), [
        {"id": 1, "a": 1, "t": "2001-06-03T23:16:13Z", "o": {"d": "2001-06-03T23:16:13+02:00"},
         "l": ["2001-06-03"]},
        {"id": 2, "a": "2024-05-01"}])
    assert rejected == []
    assert rows == [
        {"id": 1, "a": "1", "t": dt.datetime(2001, 6, 3, 23, 16, 13, tzinfo=UTC),
         "o": {"d": "2001-06-03T23:16:13+02:00"}, "l": ["2001-06-03"]},
        {"id": 2, "a": "2024-05-01", "t": None, "o": None, "l": None}]


def test_a_field_typed_as_time_only_in_a_later_piece_stays_text(tmp_path):
    rows, rejected = batches(tmp_path, ParquetEncoder(), [
        {"id": 0, "x": "hello"}, b"not json", {"id": 2, "x": "2024-05-01"},
        {"id": 3, "x": "2024-05-01T01:02:03+02:00", "o": {"d": "2024-05-02"}}])
    assert rejected == [1]
    assert [(r["x"], r["o"]) for r in rows] == [
        ("hello", None), ("2024-05-01", None), ("2024-05-01T01:02:03+02:00", {"d": "2024-05-02"})]


def test_a_known_text_column_keeps_a_date_in_a_line_that_fails_its_declared_types(tmp_path):
    """``s`` is declared to the reader as text (it looked like a time once): an int there
    makes the line parse again with no types at all, where ``u`` would be read as a time."""
    rows, rejected = batches(tmp_path, ParquetEncoder(), [{"s": "2024-05-01", "u": "x"}],
                             [{"s": 42, "u": "2024-05-01"}])
    assert rejected == []
    assert rows == [{"s": "2024-05-01", "u": "x"}, {"s": "42", "u": "2024-05-01"}]
