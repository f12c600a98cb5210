"""Schema drift across commit sets under both policies, and partition specs (given or derived
from the pipeline's --partition-by and key template)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pyarrow as pa
import pytest
from iceberg_helpers import by_id, duckdb_rows, scan_rows, write_file
from parquet_ingestor.errors import ConfigError
from parquet_ingestor_iceberg.schema import SchemaMismatch
from pyiceberg.expressions import GreaterThanOrEqual

UTC = dt.UTC


def commit(sink, rows, schema=None, key="f.parquet"):
    tx = sink.begin()
    write_file(tx, key, rows, schema=schema)
    tx.commit({})
    return tx


def test_evolve_adds_new_fields_and_widens(make_sink):
    sink = make_sink()
    narrow = pa.schema([("id", pa.int64()), ("n", pa.int32()), ("x", pa.float32())])
    commit(sink, [{"id": 1, "n": 1, "x": 0.5}], narrow, "1.parquet")
    table = sink.table()
    assert [str(f.field_type) for f in table.schema().fields] == ["long", "int", "float"]

    commit(sink, [{"id": 2, "n": 2, "x": 1.5, "country": "fr"}], key="2.parquet")  # new field
    wide = pa.schema([("id", pa.int64()), ("n", pa.int64()), ("x", pa.float64())])
    commit(sink, [{"id": 3, "n": 2**40, "x": 2.5}], wide, "3.parquet")  # int -> long, float -> double
    table = sink.table()
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    assert types == {"id": "long", "n": "long", "x": "double", "country": "string"}
    expected = [{"id": 1, "n": 1, "x": 0.5, "country": None},
                {"id": 2, "n": 2, "x": 1.5, "country": "fr"},
                {"id": 3, "n": 2**40, "x": 2.5, "country": None}]
    assert by_id(scan_rows(table)) == expected
    assert by_id(duckdb_rows(table)) == expected
    assert len(table.snapshots()) == 3


def test_evolve_refuses_an_int_that_became_a_string_naming_the_field(make_sink):
    sink = make_sink()
    commit(sink, [{"id": 1, "amount": 5}])
    tx = sink.begin()
    write_file(tx, "bad.parquet", [{"id": 2, "amount": "five"}])
    with pytest.raises(SchemaMismatch, match="field 'amount' is string in the file but long"):
        tx.commit({})
    assert by_id(scan_rows(sink.table())) == [{"id": 1, "amount": 5}]
    assert len(sink.table().snapshots()) == 1


def test_strict_refuses_new_and_changed_fields(make_sink):
    sink = make_sink(schema_policy="strict")
    commit(sink, [{"id": 1, "amount": 5}], key="ok.parquet")
    for bad, match in (({"id": 2, "amount": 1, "extra": "x"}, "field 'extra' is not in the table"),
                       ({"id": 3, "amount": "five"}, "field 'amount' is string in the file")):
        tx = sink.begin()
        write_file(tx, "bad.parquet", [bad])
        with pytest.raises(SchemaMismatch, match=match):
            tx.commit({})
        tx.abort()
    narrow = pa.schema([("id", pa.int32()), ("amount", pa.int32())])
    commit(sink, [{"id": 4, "amount": 7}], narrow, "narrow.parquet")  # int data in long: fits
    table = sink.table()
    assert {f.name: str(f.field_type) for f in table.schema().fields} == {"id": "long",
                                                                         "amount": "long"}
    assert by_id(scan_rows(table)) == [{"id": 1, "amount": 5}, {"id": 4, "amount": 7}]


def test_partition_spec_option(make_sink):
    sink = make_sink(partition_spec="day(at), identity(country), truncate(2, name)")
    day = dt.datetime(2026, 11, 29, 10, tzinfo=UTC)
    schema = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")),
                        ("country", pa.string()), ("name", pa.string())])
    for i, country in enumerate(["fr", "de"]):
        commit(sink, [{"id": i, "at": day, "country": country, "name": "abc"}], schema,
               f"{country}.parquet")
    table = sink.table()
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [
        ("at_day", "day"), ("country", "identity"), ("name_truncate", "truncate[2]")]
    partitions = sorted(str(t.file.partition) for t in table.scan().plan_files())
    assert len(partitions) == 2 and "fr" in partitions[1] and "de" in partitions[0]


def test_partition_spec_derived_from_the_pipeline_prunes_scans(make_sink):
    settings = SimpleNamespace(event_time_field="at",
                               key_template="%Y/%m/%d/{field:country}/{random}.{ext}")
    sink = make_sink(context=SimpleNamespace(settings=settings, metrics=None))
    schema = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")),
                        ("country", pa.string())])
    rows = []
    for day in (28, 29):
        for country in ("fr", "de"):
            at = dt.datetime(2026, 11, day, 3, tzinfo=UTC)
            batch = [{"id": len(rows) + i, "at": at, "country": country} for i in range(3)]
            rows += batch
            commit(sink, batch, schema, f"2026/11/{day}/{country}/x.parquet")
    table = sink.table()
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [
        ("at_day", "day"), ("country", "identity")]
    assert by_id(scan_rows(table)) == rows
    pruned = table.scan(row_filter=GreaterThanOrEqual("at", "2026-11-29T00:00:00+00:00"))
    assert len(list(pruned.plan_files())) == 2
    assert sorted(r["id"] for r in pruned.to_arrow().to_pylist()) == list(range(6, 12))


def test_partition_spec_naming_a_missing_field(make_sink):
    sink = make_sink(partition_spec="day(created_at)")
    tx = sink.begin()
    write_file(tx, "a.parquet", [{"id": 1}])
    with pytest.raises(ConfigError, match="no field 'created_at'"):
        tx.commit({})
