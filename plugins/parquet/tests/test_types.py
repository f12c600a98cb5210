"""The type rules (docs/types.md), one value case per test: stored exactly, or rejected with a
reason naming the field, the value's type and the column's type."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from parquet_ingestor.interfaces import RunContext, SinkRequirements
from parquet_ingestor.records import JsonLines, RecordList
from parquet_ingestor_parquet.encoder import ParquetEncoder
from pq_helpers import write_file

UTC = dt.UTC


def lines(*records):
    return [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]


def decode(encoder, *records):
    body = lines(*records)
    return encoder.decode(JsonLines(body, list(range(len(body)))))


def stored(tmp_path, encoder, decoded, name="f.parquet"):
    """Write the frame and read it back with pyarrow: (schema, rows)."""
    path = write_file(encoder, decoded.frame, tmp_path / name)
    table = pq.read_table(path)
    return table.schema, table.to_pylist()


# ------------------------------------------------------------------------------ timestamps


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01T01:02:03Z", dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC)),
    ("2024-05-01T01:02:03.250Z", dt.datetime(2024, 5, 1, 1, 2, 3, 250000, tzinfo=UTC)),
    ("2024-05-01T01:02:03.123456Z", dt.datetime(2024, 5, 1, 1, 2, 3, 123456, tzinfo=UTC)),
    ("2024-05-01T03:02:03+02:00", dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC)),
    ("2024-04-30T20:02:03-0500", dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC)),
])
def test_instants_are_utc_timestamps(tmp_path, text, expected):
    encoder = ParquetEncoder()
    schema, rows = stored(tmp_path, encoder, decode(encoder, {"created_at": text}))
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert rows == [{"created_at": expected}]
    column = pq.ParquetFile(tmp_path / "f.parquet").schema.column(0)
    logical = json.loads(column.logical_type.to_json())
    assert (logical["Type"], logical["isAdjustedToUTC"], logical["timeUnit"]) == (
        "Timestamp", True, "microseconds")


def test_formatting_drift_across_batches_keeps_one_type(tmp_path):
    """The issue's case: whole seconds in one batch, milliseconds in the next."""
    encoder = ParquetEncoder()
    first = decode(encoder, {"created_at": "2024-05-01T01:02:03Z"})
    second = decode(encoder, {"created_at": "2024-05-01T01:02:03.250Z"})
    assert first.frame.table.schema == second.frame.table.schema
    assert second.frame.table.column("created_at").to_pylist() == [
        dt.datetime(2024, 5, 1, 1, 2, 3, 250000, tzinfo=UTC)]


@pytest.mark.parametrize("text", [
    "2024-05-01",  # a date alone stays text, never a midnight timestamp
    "2024-05-01T01:02:03",  # a local time without a zone is not an instant
    "01:02:03",
    "2024-05-01T01:02:03Z and more",
])
def test_text_that_is_not_an_instant_stays_exactly_as_it_came(tmp_path, text):
    encoder = ParquetEncoder()
    schema, rows = stored(tmp_path, encoder, decode(encoder, {"s": text}, {"s": text}))
    assert schema.field("s").type == pa.string()
    assert rows == [{"s": text}, {"s": text}]


def test_time_text_next_to_a_boolean_keeps_its_t_and_z(tmp_path):
    encoder = ParquetEncoder()
    decoded = decode(encoder, {"x": True}, {"x": "2024-05-01T01:02:03Z"})
    _, rows = stored(tmp_path, encoder, decoded)
    assert rows == [{"x": "true"}, {"x": "2024-05-01T01:02:03Z"}]


def test_an_instant_column_rejects_what_is_not_an_instant():
    encoder = ParquetEncoder()
    decode(encoder, {"created_at": "2024-05-01T01:02:03Z"})
    decoded = decode(encoder, {"created_at": "yesterday"}, {"created_at": "2024-05-01"},
                     {"created_at": "2024-05-01T01:02:03.123456789Z"},
                     {"created_at": "2024-05-02T00:00:00Z"})
    reasons = dict(decoded.rejected)
    assert sorted(reasons) == [0, 1, 2]
    assert reasons[0].startswith("field 'created_at': string value 'yesterday' cannot be stored "
                                 "in the column's type timestamp[us, tz=UTC]")
    assert "'2024-05-01'" in reasons[1]
    assert "123456789" in reasons[2]  # nanoseconds do not fit microseconds: not rounded
    assert decoded.frame.table.column("created_at").to_pylist() == [
        dt.datetime(2024, 5, 2, tzinfo=UTC)]


@pytest.mark.parametrize("unit", ["ms", "us"])
def test_epoch_numbers_in_a_time_field(unit):
    encoder = ParquetEncoder(time_fields=["ts"], timestamp_unit=unit)
    decoded = decode(encoder, {"ts": 1714525323}, {"ts": 1714525323250}, {"n": 1714525323})
    assert decoded.rejected == []
    table = decoded.frame.table
    assert table.schema.field("ts").type == pa.timestamp(unit, tz="UTC")
    assert table.schema.field("n").type == pa.int64()  # not a time field: a number
    assert table.column("ts").to_pylist()[:2] == [
        dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC),
        dt.datetime(2024, 5, 1, 1, 2, 3, 250000, tzinfo=UTC)]


def test_the_partition_by_event_field_is_a_time_field():
    encoder = ParquetEncoder()
    encoder.start(RunContext(workers=1, metrics=None, event_time_field="at"))
    decoded = decode(encoder, {"at": 1714525323.5})
    assert decoded.frame.table.column("at").to_pylist() == [
        dt.datetime(2024, 5, 1, 1, 2, 3, 500000, tzinfo=UTC)]


def test_athena_profile_writes_milliseconds_and_rejects_finer_values():
    encoder = ParquetEncoder(compat="athena")
    decoded = decode(encoder, {"t": "2024-05-01T01:02:03.250Z"})
    assert decoded.frame.table.schema.field("t").type == pa.timestamp("ms", tz="UTC")
    finer = decode(encoder, {"t": "2024-05-01T01:02:03.2501Z"})
    assert "timestamp[ms, tz=UTC]" in finer.rejected[0][1]


# ------------------------------------------------------------------------------ integers


def test_ints_beyond_int64_next_to_valid_ones_are_stored_exactly(tmp_path):
    encoder = ParquetEncoder()
    decoded = decode(encoder, b'{"n": 9007199254740993}', b'{"n": 18446744073709551615}',
                     b'{"n": 9223372036854775807}', b'{"n": 1}')
    assert decoded.rejected == []
    schema, rows = stored(tmp_path, encoder, decoded)
    assert schema.field("n").type == pa.decimal128(38, 0)
    assert [r["n"] for r in rows] == [Decimal(9007199254740993), Decimal(18446744073709551615),
                                      Decimal(9223372036854775807), Decimal(1)]


def test_big_int_in_an_int64_column_is_rejected_with_a_reason():
    encoder = ParquetEncoder()
    decode(encoder, {"n": 1})
    decoded = decode(encoder, b'{"n": 9007199254740993}', b'{"n": 18446744073709551615}')
    assert decoded.rejected == [(1, "field 'n': int value 18446744073709551615 cannot be stored "
                                    "in the column's type int64 (outside int64's range)")]
    assert decoded.frame.table.column("n").to_pylist() == [9007199254740993]


def test_int_that_a_double_would_round_is_rejected():
    encoder = ParquetEncoder()
    decode(encoder, {"x": 1.5})
    decoded = decode(encoder, b'{"x": 9007199254740993}', b'{"x": 2}')
    assert decoded.rejected == [(0, "field 'x': int value 9007199254740993 cannot be stored in "
                                    "the column's type double (beyond 2**53, a double would "
                                    "round it)")]
    assert decoded.frame.table.column("x").to_pylist() == [2.0]


def test_int_beyond_38_digits_is_rejected():
    encoder = ParquetEncoder()
    decode(encoder, b'{"n": 18446744073709551615}')
    decoded = decode(encoder, b'{"n": ' + b"9" * 40 + b"}")
    assert "more than 38 digits" in decoded.rejected[0][1]


def test_float_in_an_int_column_and_text_in_a_number_column_are_rejected():
    encoder = ParquetEncoder()
    decode(encoder, {"n": 1})
    decoded = decode(encoder, {"n": 1.5}, {"n": "7"}, {"n": 2.0}, {"n": True})
    reasons = dict(decoded.rejected)
    assert reasons[0] == ("field 'n': float value 1.5 cannot be stored in the column's type "
                          "int64 (does not convert exactly)")
    assert reasons[1].startswith("field 'n': string value '7' cannot be stored in the column's "
                                 "type int64")
    assert reasons[3] == ("field 'n': bool value True cannot be stored in the column's type "
                          "int64 (a boolean is not a number or text)")
    assert decoded.frame.table.column("n").to_pylist() == [2]


def test_a_number_in_a_string_column_is_its_json_text():
    encoder = ParquetEncoder()
    decode(encoder, {"s": "a"})
    decoded = decode(encoder, b'{"s": 42}', b'{"s": 2.50}', b'{"s": 1e3}',
                     b'{"s": 1700000000.0}', b'{"s": -0.0}', b'{"s": null}')
    assert decoded.rejected == []
    assert decoded.frame.table.column("s").to_pylist() == [
        "42", "2.50", "1e3", "1700000000.0", "-0.0", None]


def test_booleans_objects_and_arrays_in_a_string_column_are_their_json_text():
    """As in a new field's first batch (below), so a line gets the same text whichever batch
    it lands in; Spark and DuckDB read JSON into a string column the same way."""
    encoder = ParquetEncoder()
    decode(encoder, {"s": "a"})
    decoded = decode(encoder, b'{"s": true}', b'{"s": {"k": "v", "n": [1, 2]}}', b'{"s": [1, 2]}',
                     b'{"s": false}', b'{"s": {}}')
    assert decoded.rejected == []
    assert decoded.frame.table.column("s").to_pylist() == [
        "true", '{"k":"v","n":[1,2]}', "[1,2]", "false", "{}"]
    first = ParquetEncoder()
    assert decode(first, b'{"s": "a"}', b'{"s": true}', b'{"s": {"k": "v", "n": [1, 2]}}',
                  b'{"s": [1, 2]}').frame.table.column("s").to_pylist() == [
        "a", "true", '{"k":"v","n":[1,2]}', "[1,2]"]


def test_a_float_from_dict_rows_in_a_string_column_is_its_shortest_text():
    """A Python float has no JSON spelling: its text is Arrow's (the shortest that reads back
    as the same double)."""
    encoder = ParquetEncoder()
    decode(encoder, {"s": "a"})
    decoded = encoder.decode(RecordList([{"s": 42}, {"s": 2.50}, {"s": 1e3}], [0, 1, 2]))
    assert decoded.rejected == []
    assert decoded.frame.table.column("s").to_pylist() == ["42", "2.5", "1000"]


def test_numbers_next_to_text_in_a_new_field_are_their_json_text():
    """Within a new field's first batch, conflicting values become text: a number as the line
    spells it, read again only for those rows."""
    encoder = ParquetEncoder()
    decoded = decode(encoder, b'{"u": "x"}', b'{"u": 2.50}', b'{"u": 1e3}', b'{"u": 42}',
                     b'{"u": 1700000000.0}', b'{"u": 9007199254740993.0}', b'{"u": true}',
                     b'{"u": null}')
    assert decoded.rejected == []
    assert decoded.frame.table.column("u").to_pylist() == [
        "x", "2.50", "1e3", "42", "1700000000.0", "9007199254740993.0", "true", None]


# ------------------------------------------------------------------------------ schema


def test_new_fields_are_nullable_columns_and_every_file_has_every_column(tmp_path):
    encoder = ParquetEncoder()
    decode(encoder, {"a": 1})
    decoded = decode(encoder, {"b": "x"})
    schema, rows = stored(tmp_path, encoder, decoded)
    assert schema.names == ["a", "b"] and all(f.nullable for f in schema)
    assert rows == [{"a": None, "b": "x"}]


def test_struct_gains_fields():
    encoder = ParquetEncoder()
    decode(encoder, {"u": {"a": 1}})
    decoded = decode(encoder, {"u": {"a": 2, "b": "x"}})
    assert decoded.frame.table.column("u").to_pylist() == [{"a": 2, "b": "x"}]
    assert decode(encoder, {"u": {"a": 3}}).frame.table.column("u").to_pylist() == [
        {"a": 3, "b": None}]


def test_strict_drops_new_fields_and_rejects_misfits():
    encoder = ParquetEncoder(on_schema_change="strict")
    decode(encoder, {"a": 1})
    decoded = decode(encoder, {"a": 2, "b": "x"}, {"a": "y"})
    assert decoded.frame.table.to_pylist() == [{"a": 2}]
    assert [i for i, _ in decoded.rejected] == [1]


def test_schema_is_read_back_from_the_newest_file_after_a_restart(tmp_path):
    class Sink:
        def url(self, key):
            return (tmp_path / "out").as_uri() + "/" + key

    (tmp_path / "out" / "year=2024").mkdir(parents=True)
    first = ParquetEncoder()
    first.start(RunContext(workers=1, metrics=None, sink=Sink()))
    decoded = decode(first, {"created_at": "2024-05-01T01:02:03Z", "n": 1, "s": "x"})
    write_file(first, decoded.frame, tmp_path / "out" / "year=2024" / "a.parquet")
    restarted = ParquetEncoder()
    restarted.start(RunContext(workers=1, metrics=None, sink=Sink()))
    assert restarted.schema.equals(first.schema)
    decoded = decode(restarted, {"n": 2.5}, {"created_at": "2024-05-01T01:02:04.5Z", "s": 7})
    assert decoded.frame.table.schema.equals(first.schema)
    assert [i for i, _ in decoded.rejected] == [0]  # 2.5 does not fit the int64 written before
    assert decoded.frame.table.column("s").to_pylist() == ["7"]


def test_require_makes_a_sinks_schema_with_field_ids_the_authority(tmp_path):
    """The Iceberg path: the sink's Arrow schema, field ids included, is what every file has."""
    def field(name, kind, fid, nullable=True):
        return pa.field(name, kind, nullable=nullable, metadata={"PARQUET:field_id": str(fid)})

    schema = pa.schema([
        field("id", pa.string(), 1, nullable=False),
        field("created_at", pa.timestamp("us", tz="UTC"), 2),
        field("ctx", pa.struct([field("ip", pa.string(), 4)]), 3),
    ])
    encoder = ParquetEncoder()
    encoder.require(SinkRequirements(schema=schema, field_ids=True))
    decoded = decode(encoder, {"id": "a", "created_at": "2024-05-01T01:02:03Z",
                               "ctx": {"ip": "1.2.3.4"}, "extra": 1},
                     {"created_at": "2024-05-01T01:02:03Z"}, {"id": "c", "created_at": "soon"})
    assert [(i, r.split(" (")[0]) for i, r in decoded.rejected] == [
        (1, "required field 'id' is missing"),
        (2, "field 'created_at': string value 'soon' cannot be stored in the column's type "
            "timestamp[us, tz=UTC]")]
    path = write_file(encoder, decoded.frame, tmp_path / "ice.parquet")
    read = pq.read_schema(path)
    assert read.names == ["id", "created_at", "ctx"]  # 'extra' is not in the table
    assert [read.field(n).metadata[b"PARQUET:field_id"] for n in read.names] == [b"1", b"2", b"3"]
    assert read.field("ctx").type.field(0).metadata[b"PARQUET:field_id"] == b"4"
    parquet_schema = pq.ParquetFile(path).schema
    assert [parquet_schema.column(i).path for i in range(3)] == ["id", "created_at", "ctx.ip"]
    assert pq.read_table(path).to_pylist() == [
        {"id": "a", "created_at": dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC),
         "ctx": {"ip": "1.2.3.4"}}]


def test_s3tables_profile_lowercases_names():
    encoder = ParquetEncoder(compat="s3tables")
    decoded = decode(encoder, {"UserId": 1, "Name": "x"}, {"userid": 2, "UserId": 3})
    assert decoded.frame.table.column_names == ["userid", "name"]
    assert [i for i, _ in decoded.rejected] == [1]
    assert "one column when names are lower case" in decoded.rejected[0][1]


def test_s3tables_big_int_in_an_upper_case_double_field_is_rejected_not_nulled():
    encoder = ParquetEncoder(compat="s3tables")
    decoded = decode(encoder, b'{"id": 1, "A": 0.5}', b'{"id": 2, "A": 9007199254740993}')
    assert decoded.frame.table.to_pylist() == [{"id": 1, "a": 0.5}]
    assert decoded.rejected == [(1, "field 'a': int value 9007199254740993 cannot be stored in "
                                    "the column's type double (beyond 2**53, a double would "
                                    "round it)")]
    later = decode(encoder, b'{"id": 3, "A": 9007199254740993}', b'{"id": 4, "a": 2}')
    assert later.frame.table.column("a").to_pylist() == [2.0]
    assert [i for i, _ in later.rejected] == [0]


def test_s3tables_ints_beyond_int64_in_an_upper_case_field_are_exact():
    encoder = ParquetEncoder(compat="s3tables")
    decoded = decode(encoder, b'{"N": 9007199254740993}', b'{"N": 18446744073709551615}')
    assert decoded.rejected == []
    assert decoded.frame.table.column("n").to_pylist() == [Decimal(9007199254740993),
                                                           Decimal(18446744073709551615)]


def test_s3tables_names_that_collide_keep_each_rows_value():
    encoder = ParquetEncoder(compat="s3tables")
    decoded = decode(encoder, b'{"id": 1, "Big": 1}', b'{"id": 2, "big": 9007199254740993}',
                     b'{"id": 3, "BIG": null}')
    assert decoded.rejected == []
    assert decoded.frame.table.column("big").to_pylist() == [1, 9007199254740993, None]
    other = ParquetEncoder(compat="s3tables")
    decoded = decode(other, b'{"id": 1, "A": 1}', b'{"id": 2, "a": "x"}')
    assert decoded.frame.table.to_pylist() == [{"id": 1, "a": 1}]
    assert decoded.rejected == [(1, "fields 'A' and 'a' are one column when names are lower "
                                    "case, and their values differ in type (int64, string) "
                                    "in this batch")]


def test_s3tables_a_known_column_spelled_in_upper_case_is_not_turned_to_text():
    encoder = ParquetEncoder(compat="s3tables")
    decode(encoder, {"a": 0.5, "s": "t"})
    decoded = decode(encoder, b'{"A": "x"}', b'{"A": 2.50}', b'{"S": 2.50}')
    assert decoded.frame.table.to_pylist() == [{"a": 2.5, "s": None}, {"a": None, "s": "2.50"}]
    assert [i for i, _ in decoded.rejected] == [0]


def test_unknown_compat_profile_is_a_one_line_error():
    from parquet_ingestor.errors import ConfigError

    with pytest.raises(ConfigError, match="option 'compat': 'hive' is not one of all, spark, "
                                          "trino, athena, duckdb, s3tables"):
        ParquetEncoder(compat="hive")


# ------------------------------------------------------------------------------ hostile input


@pytest.mark.parametrize("depth", [1_000, 10_000])
def test_deep_nesting_is_rejected_alone(depth):
    good = [{"a": i} for i in range(50)]
    poison = b'{"x":' * depth + b"1" + b"}" * depth
    arrays = b"[" * depth + b"]" * depth
    decoded = decode(ParquetEncoder(), *good[:25], poison, arrays, *good[25:])
    assert decoded.rejected == [(25, "JSON nested deeper than 32 levels (max_depth)"),
                                (26, "JSON nested deeper than 32 levels (max_depth)")]
    assert decoded.frame.table.column("a").to_pylist() == list(range(50))


def test_nesting_within_the_limit_gives_a_file_pyarrow_opens(tmp_path):
    encoder = ParquetEncoder(max_depth=40)
    deep_lists = b'{"l":' + b"[" * 39 + b"1" + b"]" * 39 + b"}"
    deep_objects = b'{"o":' * 40 + b"1" + b"}" * 40
    decoded = decode(encoder, deep_lists, deep_objects)
    assert decoded.rejected == []
    stored(tmp_path, encoder, decoded)  # opens
    assert decode(encoder, b'{"l":' + b"[" * 40 + b"]" * 40 + b"}").rejected


def test_an_object_with_too_many_keys_is_rejected_cheaply():
    import resource

    big = b"{" + b",".join(b'"k%d":1' % i for i in range(1_000_000)) + b"}"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    decoded = decode(ParquetEncoder(), {"a": 1}, big)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert decoded.rejected == [(1, "JSON object with more than 10000 keys (max_keys)")]
    assert grown_mib < 200  # was 7 GB


def test_the_type_rules_do_not_import_pandas():
    """A Python number handed to a pyarrow compute function makes pyarrow import pandas
    (~1.5 CPU-seconds, 40 MiB): the usual batch must not (file -> file speed)."""
    import subprocess
    import sys

    script = """
import json, sys
from parquet_ingestor.records import JsonLines, RecordList
from parquet_ingestor_parquet.encoder import ParquetEncoder
encoder = ParquetEncoder()
for b in range(2):
    rows = [{"id": str(i), "created_at": "2024-05-01T01:02:03.%03dZ" % i, "amount": 1.5 * i,
             "n": i, "tags": ["a"], "ctx": {"ip": "1.2.3.4"}} for i in range(100)]
    lines = [json.dumps(r).encode() for r in rows]
    decoded = encoder.decode(JsonLines(lines, list(range(100))))
    assert not decoded.rejected
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_hostile_lines_go_to_the_error_sink_alone_through_the_cli(tmp_path):
    """10,000 deep (a SIGSEGV before), 1,000 deep (a RecursionError that failed the batch) and
    1M keys, between good lines: the good ones are written once, each bad one is in the error
    sink with its reason, exit 0. An unknown compat profile exits 2 with one line."""
    import subprocess
    import sys
    from pathlib import Path

    good = [json.dumps({"id": i}).encode() for i in range(50)]
    bad = [b'{"x":' * 10_000 + b"1" + b"}" * 10_000, b'{"a":' + b"[" * 1_000 + b"]" * 1_000 + b"}",
           b"{" + b",".join(b'"k%d":1' % i for i in range(1_000_000)) + b"}"]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(good[:20] + bad[:2] + good[20:] + bad[2:]) + b"\n")
    ingest = str(Path(sys.executable).with_name("ingest"))
    done = subprocess.run(
        [ingest, "--source", "file", "--source-opt", f"path={source}", "--sink", "file",
         "--sink-opt", f"path={tmp_path / 'out'}", "--error-sink", "file",
         "--error-sink-opt", f"path={tmp_path / 'errors'}"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(next((tmp_path / "out").rglob("*.parquet"))).column("id").to_pylist()
    assert sorted(rows) == list(range(50))
    errors = [json.loads(x) for f in (tmp_path / "errors").rglob("*.jsonl")
              for x in f.read_text().splitlines()]
    assert sorted(e["reason"] for e in errors) == [
        "JSON nested deeper than 32 levels (max_depth)",
        "JSON nested deeper than 32 levels (max_depth)",
        "JSON object with more than 10000 keys (max_keys)"]
    unknown = subprocess.run(
        [ingest, "--source", "file", "--source-opt", f"path={source}", "--sink", "file",
         "--sink-opt", f"path={tmp_path / 'x'}", "--encoder-opt", "compat=hive"],
        capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "ingest: error: encoder 'parquet' option 'compat': 'hive' is not one of all, spark, "
        "trino, athena, duckdb, s3tables"]


def test_a_field_declared_as_a_timestamp_takes_epoch_numbers():
    encoder = ParquetEncoder(schema=pa.schema([("at", pa.timestamp("ms", tz="UTC"))]))
    decoded = decode(encoder, {"at": 1714525323}, {"at": "2024-05-01T01:02:03.250Z"},
                     {"at": "2024-05-01"})
    assert decoded.frame.table.column("at").to_pylist() == [
        dt.datetime(2024, 5, 1, 1, 2, 3, tzinfo=UTC),
        dt.datetime(2024, 5, 1, 1, 2, 3, 250000, tzinfo=UTC)]
    assert [i for i, _ in decoded.rejected] == [2]  # a date alone is not an instant


def test_dict_rows_with_ints_beyond_int64_are_exact_decimals():
    from parquet_ingestor.records import RecordList

    encoder = ParquetEncoder()
    rows = [{"n": 2**64 - 1}, {"n": 9007199254740993}, {"n": None}]
    decoded = encoder.decode(RecordList(rows, [0, 1, 2]))
    assert decoded.rejected == []
    assert decoded.frame.table.schema.field("n").type == pa.decimal128(38, 0)
    assert decoded.frame.table.column("n").to_pylist() == [Decimal(2**64 - 1),
                                                          Decimal(9007199254740993), None]


def test_a_text_column_keeps_time_like_text_exactly_in_later_batches():
    """pyarrow's JSON reader would type these as timestamps (dropping the offset, turning the
    date into midnight): in a text column they stay the text that came."""
    encoder = ParquetEncoder()
    decode(encoder, {"s": "x"})
    for batch in ([{"s": "2024-05-01"}, {"s": "2024-05-02"}],
                  [{"s": "2024-05-01T03:02:03+02:00"}],
                  [{"s": "2024-05-01T01:02:03"}]):
        decoded = decode(encoder, *batch)
        assert decoded.frame.table.column("s").to_pylist() == [r["s"] for r in batch]
    assert encoder.dataset.time_like == {"s"}  # declared as text from then on


def test_arrow_times_are_not_cast_to_numbers_or_text():
    """An Arrow timestamp going into an int64 or a string column is rejected, not stored as
    epoch ticks or as reformatted text."""
    encoder = ParquetEncoder()
    decode(encoder, {"n": 1, "s": "a"})
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    table = pa.table({"n": pa.array([when], pa.timestamp("s", tz="UTC")),
                      "s": pa.array([when], pa.timestamp("us", tz="UTC"))})
    decoded = encoder.decode(table)
    assert [i for i, _ in decoded.rejected] == [0]
    assert "a time is not converted to numbers or text" in decoded.rejected[0][1]


def test_a_float_in_a_decimal_column_is_stored_only_when_exact():
    """A column of integers beyond int64 is decimal(38, 0): a float goes in only when it is a
    whole number (2.0); 1e-07 or 1.5 are rejected, not rounded to 0 or 1 (Arrow's cast does)."""
    encoder = ParquetEncoder()
    decode(encoder, b'{"n": 18446744073709551615}')
    decoded = decode(encoder, b'{"n": 2.0}', b'{"n": 1e-07}', b'{"n": 1.5}', b'{"n": 5e-324}',
                     b'{"n": 7}', b'{"n": 1e300}', b'{"n": 1e37}')
    assert [i for i, _ in decoded.rejected] == [1, 2, 3, 5]
    assert "more than 38 digits" in decoded.rejected[3][1]
    assert "cannot be stored in the column's type decimal128(38, 0)" in decoded.rejected[0][1]
    assert decoded.frame.table.column("n").to_pylist() == [2, 7, int(1e37)]  # the double 1e37, exactly


def test_an_int_beyond_2_53_inside_a_double_struct_field_or_list_is_rejected_not_rounded():
    """Top-level numbers are read again from the line; nested ones are not, so a row whose
    nested double would round an integer is rejected with the path, never stored rounded."""
    encoder = ParquetEncoder()
    decoded = decode(encoder, b'{"id": 1, "s": {"x": 9007199254740993, "y": 0.5}}',
                     b'{"id": 2, "s": {"x": 1.5}}', b'{"id": 3, "l": [9007199254740993, 0.5]}',
                     b'{"id": 4, "l": [2, 0.5]}', b'{"id": 5, "s": {"x": 1e20}}',
                     b'{"id": 6, "s": {"x": 18446744073709551615}}',
                     b'{"id": 7, "d": [{"v": [0.5, 9007199254740995]}]}')
    reasons = dict(decoded.rejected)
    assert sorted(reasons) == [0, 2, 5, 6]
    assert reasons[0] == ("field 's': int value 9007199254740993 at s.x cannot be stored in its "
                          "double (beyond 2**53, a double would round it)")
    assert "at l[]" in reasons[2] and "at d[].v[]" in reasons[6]
    assert decoded.frame.table.column("id").to_pylist() == [2, 4, 5]
    assert decoded.frame.table.column("s").to_pylist()[2] == {"x": 1e20, "y": None}
