"""One bad message never fails the batch: poison lines are found by bisection and rejected."""

from __future__ import annotations

import json

import pytest
from parquet_ingestor.records import JsonLines
from parquet_ingestor_parquet.encoder import ParquetEncoder
from parquet_ingestor_parquet.jsonread import parse_lines
from pq_helpers import as_stored, read_duckdb, read_pyarrow, write_file

pytestmark = pytest.mark.timeout(120)

POISONS = [
    b"not json at all",
    b"[1, 2, 3]",
    b"42",
    b'"a string"',
    b"null",
    b"",
    b"   ",
    b'{"a": 1} {"b": 2}',
    b'{"truncated": ',
    b'{"user_id": 1, "user_id": 2}',
]


def build(events, n, positions, poison_for=lambda k: POISONS[k % len(POISONS)]):
    """Good events with poison lines at ``positions``; sources are message ids 1000+i."""
    good = iter(events(n))
    lines, expected_good, poison_at = [], [], {}
    for i in range(n + len(positions)):
        if i in positions:
            poison_at[i] = poison_for(len(poison_at))
            lines.append(poison_at[i])
        else:
            line = next(good)
            lines.append(line)
            expected_good.append(i)
    sources = [1000 + i for i in range(len(lines))]
    return lines, sources, expected_good, poison_at


def check(tmp_path, events, n, positions, schema=None, **options):
    lines, sources, good, poison_at = build(events, n, set(positions))
    encoder = ParquetEncoder(**options)
    decoded = encoder.decode(JsonLines(lines, sources, schema=schema))
    assert sorted(decoded.rejected) == decoded.rejected
    assert [src for src, _ in decoded.rejected] == [1000 + i for i in sorted(poison_at)]
    assert all(reason for _, reason in decoded.rejected)
    assert list(decoded.frame.sources) == [1000 + i for i in good]
    file = write_file(encoder, decoded.frame, tmp_path / "b.parquet")
    rows = read_pyarrow(file)
    assert rows == [as_stored(json.loads(lines[i])) for i in good]  # row -> source alignment is exact
    return decoded


@pytest.mark.parametrize("where", ["first", "last", "middle"])
def test_single_poison(tmp_path, events, where):
    n = 2001
    position = {"first": 0, "middle": 1000, "last": n}[where]
    decoded = check(tmp_path, events, n, [position])
    assert len(decoded.rejected) == 1


def test_every_kind_of_poison(tmp_path, events):
    positions = [0, 3, 4, 50, 51, 52, 700, 701, 998, 1009]
    decoded = check(tmp_path, events, 1000, positions)
    reasons = dict(decoded.rejected)
    assert "null" in reasons[1051]  # a bare null (pyarrow alone would read an empty row)
    assert "empty line" in reasons[1052]
    assert "empty line" in reasons[1700]  # whitespace only
    assert "JSON parse error" in reasons[1701]  # two objects on one line
    assert "not an object" in reasons[1003]  # [1, 2, 3]


def test_many_poisons(tmp_path, events):
    positions = list(range(0, 3000, 7))  # ~430 poisons in 3000 lines
    check(tmp_path, events, 3000 - len(positions), positions)


def test_all_poison(tmp_path, events):
    lines = [b"nope", b"[]", b"null"]
    decoded = ParquetEncoder().decode(JsonLines(lines, [0, 1, 2]))
    assert [s for s, _ in decoded.rejected] == [0, 1, 2]
    assert len(decoded.frame) == 0


def test_poison_with_explicit_schema(tmp_path, events):
    """With a schema, a value of the wrong type is a poison too (in both policies)."""
    schema = {"id": "string", "user_id": "int64", "created_at": "timestamp[ms, UTC]"}
    lines, sources, good, _ = build(events, 500, {10, 20, 400},
                                    poison_for=lambda k: [b'{"user_id": "abc"}',
                                                          b'{"created_at": "yesterday"}',
                                                          b'{"user_id": 1e400}'][k])
    for policy in ("evolve", "strict"):
        decoded = ParquetEncoder(on_schema_change=policy).decode(
            JsonLines(lines, sources, schema=schema))
        assert [s for s, _ in decoded.rejected] == [1010, 1020, 1400], policy
        assert list(decoded.frame.sources) == [1000 + i for i in good]
        for _, reason in decoded.rejected:
            assert reason.startswith(("field 'user_id': string value 'abc'",
                                      "field 'created_at': string value 'yesterday'",
                                      "JSON parse error")), reason


def test_newline_inside_a_line_is_kept_aligned(tmp_path):
    """A pretty-printed body (newlines between tokens) is one record, not two."""
    lines = [b'{"a": 1}', b'{\n  "a": 2,\r\n  "b": "x"\n}', b'{"a": 3}']
    encoder = ParquetEncoder()
    decoded = encoder.decode(JsonLines(lines, [7, 8, 9]))
    assert decoded.rejected == []
    assert list(decoded.frame.sources) == [7, 8, 9]
    file = write_file(encoder, decoded.frame, tmp_path / "nl.parquet")
    assert read_duckdb(file) == [{"a": 1, "b": None}, {"a": 2, "b": "x"}, {"a": 3, "b": None}]


def test_invalid_utf8_is_rejected(tmp_path):
    lines = [b'{"a": "ok"}', b'{"a": "\xff\xfe"}', b'{"a": "fine"}']
    decoded = ParquetEncoder().decode(JsonLines(lines, [0, 1, 2]))
    assert [s for s, _ in decoded.rejected] == [1]
    assert decoded.frame.table.column("a").to_pylist() == ["ok", "fine"]


def test_clean_batch_is_one_parse(events):
    lines = events(5000)
    assert parse_lines(lines, None, "infer").parses == 1


def test_bisection_cost_stays_small(events):
    """Each poison costs a few extra parses, not one per line."""
    lines = events(4000)
    for i in (5, 1500, 3999):
        lines[i] = b"bad"
    parsed = parse_lines(lines, None, "infer")
    assert [i for i, _ in parsed.rejected] == [5, 1500, 3999]
    assert parsed.parses < 30


def test_multi_line_messages_keep_their_source(tmp_path, events):
    """Several lines can come from one message; each row keeps that message's index."""
    lines = events(6)
    sources = [0, 0, 0, 1, 1, 2]
    lines[4] = b"broken"
    decoded = ParquetEncoder().decode(JsonLines(lines, sources))
    assert decoded.rejected[0][0] == 1
    assert list(decoded.frame.sources) == [0, 0, 0, 1, 2]


def test_two_objects_on_one_line_never_shift_rows():
    """A line holding two objects must be rejected, never shift the rows after it."""
    lines = [b'{"id": 0}', b'{"id": 1} {"id": 99}', b'{"id": 2}', b'{"id": 3}']
    parsed = parse_lines(lines, None, "infer")
    rows = [r for t in parsed.tables for r in t.to_pylist()]
    kept = dict(zip(parsed.lines, rows, strict=True))
    assert [i for i, _ in parsed.rejected] == [1]
    assert kept == {0: {"id": 0}, 2: {"id": 2}, 3: {"id": 3}}


def test_clean_batch_is_one_parse_with_an_explicit_schema():
    import pyarrow as pa

    schema = pa.schema([("id", pa.int64()), ("t", pa.timestamp("ms", tz="UTC"))])
    lines = [b'{"id": 1, "t": "2024-05-01T00:00:00Z", "extra": 1}', b'{"id": 2}']
    parsed = parse_lines(lines, schema, "ignore")
    assert parsed.parses == 1 and parsed.lines == [0, 1]
    assert parsed.tables[0].schema == schema


def test_lists_opening_with_null_are_written_not_rejected(tmp_path):
    """pyarrow's JSON reader gives invalid Arrow data for a list whose first item is null
    (``[null, 3]``: "Length spanned by list offsets"); such a line is parsed by Python instead
    and written, every item kept. Invalid UTF-8 is still rejected."""
    lines = [b'{"id": 1, "l": [null, 3]}', b'{"id": 2, "l": [null, null]}', b'{"id": 3, "l": [4]}',
             b'{"id": 4, "m": {"k": [null, "x"]}}', b'{"id": 5, "s": "\xff"}']
    encoder = ParquetEncoder()
    decoded = encoder.decode(JsonLines(lines, list(range(len(lines)))))
    assert [i for i, _ in decoded.rejected] == [4]
    rows = read_pyarrow(write_file(encoder, decoded.frame, tmp_path / "x.parquet"))
    assert sorted(rows, key=lambda r: r["id"]) == [
        {"id": 1, "l": [None, 3], "m": None}, {"id": 2, "l": [None, None], "m": None},
        {"id": 3, "l": [4], "m": None}, {"id": 4, "l": None, "m": {"k": [None, "x"]}}]
