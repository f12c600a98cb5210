"""Schemas: type names, JSON files, dataclasses, pydantic models, inference, and drift policies."""

from __future__ import annotations

import datetime as dt
import json
import sys
import textwrap
from dataclasses import dataclass
from typing import Optional

import pyarrow as pa
import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.records import JsonLines, RecordList
from parquet_ingestor_parquet.encoder import ParquetEncoder
from parquet_ingestor_parquet.schema import parse_type, schema_from_class
from pq_helpers import read_duckdb, read_pyarrow, write_file

pytestmark = pytest.mark.timeout(120)
UTC = dt.UTC


@pytest.mark.parametrize(("name", "expected"), [
    ("int64", pa.int64()),
    ("string", pa.string()),
    ("bool", pa.bool_()),
    ("float64", pa.float64()),
    ("timestamp[ms]", pa.timestamp("ms")),
    ("timestamp[us, UTC]", pa.timestamp("us", "UTC")),
    ("timestamp[ns, tz=Europe/Paris]", pa.timestamp("ns", "Europe/Paris")),
    ("list<string>", pa.list_(pa.string())),
    ("list<item: int32>", pa.list_(pa.int32())),
    ("struct<ip: string, geo: struct<lat: double>>",
     pa.struct([("ip", pa.string()), ("geo", pa.struct([("lat", pa.float64())]))])),
    ("decimal128(10, 2)", pa.decimal128(10, 2)),
    ("date32", pa.date32()),
    ("map<string, int64>", pa.map_(pa.string(), pa.int64())),
])
def test_type_names(name, expected):
    assert parse_type(name) == expected


@pytest.mark.parametrize("name", ["integer64", "list<>", "struct<a>", "timestamp[ms", ""])
def test_bad_type_names(name):
    with pytest.raises(ValueError):
        parse_type(name)


def lines_of(records):
    data = [json.dumps(r).encode() for r in records]
    return JsonLines(data, list(range(len(data))))


EVENTS = [
    {"id": "a", "at": "2024-05-01T10:00:00Z", "n": 2**40, "tags": ["x"], "ctx": {"ip": "1"}},
    {"id": "b", "at": "2024-05-01T11:30:00.5+01:00", "n": 3, "tags": [], "ctx": {"ip": None},
     "extra": 1.5},
]


def test_schema_from_json_file(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"id": "string", "at": "timestamp[ms, UTC]", "n": "int64",
                                "tags": ["string"], "ctx": {"ip": "string"}}))
    for policy, extra in (("evolve", True), ("strict", False)):
        encoder = ParquetEncoder(schema=str(path), on_schema_change=policy)
        decoded = encoder.decode(lines_of(EVENTS))
        assert decoded.rejected == []
        table = decoded.frame.table
        assert table.schema.field("at").type == pa.timestamp("ms", "UTC")
        assert table.schema.field("tags").type == pa.list_(pa.string())
        assert ("extra" in table.column_names) is extra
        rows = read_duckdb(write_file(encoder, decoded.frame, tmp_path / f"{policy}.parquet"))
        assert rows[1]["at"] == dt.datetime(2024, 5, 1, 10, 30, 0, 500000, tzinfo=UTC)
        assert rows[0]["n"] == 2**40


@pytest.mark.parametrize("content", ["[1, 2]", "{not json", '{"a": "integer99"}'])
def test_bad_schema_files(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="schema"):
        ParquetEncoder(schema=str(path))


@dataclass
class Ctx:
    ip: Optional[str]  # noqa: UP045 - typing.Optional is supported too
    ua: str | None = None


@dataclass
class Event:
    id: str
    at: dt.datetime
    n: int
    tags: list[str]
    ctx: Ctx | None
    score: float | None = None
    ok: bool | None = None


def test_schema_from_dataclass():
    schema = schema_from_class(Event)
    assert schema.field("id").type == pa.string() and not schema.field("id").nullable
    assert schema.field("at").type == pa.timestamp("us", "UTC")
    assert schema.field("n").type == pa.int64()
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("ctx").type == pa.struct([("ip", pa.string()), ("ua", pa.string())])
    assert schema.field("ctx").nullable and schema.field("score").nullable
    assert schema.field("ok").type == pa.bool_()


def test_schema_class_option_and_required_fields(tmp_path):
    """``schema=module:Class`` is imported; under strict a record missing a required field is
    rejected, under evolve it is written with a null."""
    module = tmp_path / "my_events_mod.py"
    module.write_text(textwrap.dedent('''
        import datetime
        from pydantic import BaseModel, Field

        class Ctx(BaseModel):
            ip: str | None = None

        class Event(BaseModel):
            id: str
            at: datetime.datetime
            n: int
            tags: list[str] = []
            ctx: Ctx | None = None
            kind: str | None = Field(default=None, alias="type")
    '''))
    sys.path.insert(0, str(tmp_path))
    try:
        records = [*EVENTS, {"at": "2024-05-01T12:00:00Z", "n": 1, "type": "t"}]
        strict = ParquetEncoder(schema="my_events_mod:Event", on_schema_change="strict")
        decoded = strict.decode(lines_of(records))
        assert decoded.rejected == [(2, "required field 'id' is missing")]
        assert decoded.frame.table.schema.field("id").nullable is False
        assert decoded.frame.table.column_names == ["id", "at", "n", "tags", "ctx", "type"]
        rows = read_pyarrow(write_file(strict, decoded.frame, tmp_path / "s.parquet"))
        assert [r["id"] for r in rows] == ["a", "b"]
        assert rows[0]["at"] == dt.datetime(2024, 5, 1, 10, tzinfo=UTC)

        evolve = ParquetEncoder(schema="my_events_mod:Event")
        decoded = evolve.decode(lines_of(records))
        assert decoded.rejected == []
        rows = read_pyarrow(write_file(evolve, decoded.frame, tmp_path / "e.parquet"))
        assert [r["id"] for r in rows] == ["a", "b", None]
        assert rows[2]["type"] == "t" and rows[1]["extra"] == 1.5
    finally:
        sys.path.remove(str(tmp_path))


def test_schema_option_rejects_non_models():
    with pytest.raises(ConfigError, match="dataclass or pydantic"):
        ParquetEncoder(schema="json:dumps")


def test_inferred_schema():
    decoded = ParquetEncoder().decode(lines_of(EVENTS))
    schema = decoded.frame.table.schema
    assert schema.field("n").type == pa.int64()
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("extra").type == pa.float64()
    assert decoded.frame.table.column("extra").to_pylist() == [None, 1.5]


def test_record_list_with_schema_parses_iso_times_and_rejects_misfits():
    rows = [
        {"id": "a", "at": "2024-05-01T10:00:00Z", "n": 1},
        {"id": "b", "at": dt.datetime(2024, 5, 1, 12, tzinfo=UTC), "n": 2**62},
        {"id": "c", "at": "not a time", "n": 3},
        {"id": "d", "at": None, "n": "four"},
        {"id": "e", "at": 1714557600, "n": 2**64},  # epoch seconds; int beyond 64 bits
    ]
    for policy in ("evolve", "strict"):
        encoder = ParquetEncoder(schema=None, on_schema_change=policy)
        decoded = encoder.decode(RecordList([dict(r) for r in rows], [10, 11, 12, 13, 14],
                                            schema={"id": "string", "at": "timestamp[us, UTC]",
                                                    "n": "int64"}))
        assert [s for s, _ in decoded.rejected] == [12, 13, 14], policy
        assert "timestamp" in dict(decoded.rejected)[12]
        table = decoded.frame.table
        assert table.column("at").to_pylist() == [dt.datetime(2024, 5, 1, 10, tzinfo=UTC),
                                                  dt.datetime(2024, 5, 1, 12, tzinfo=UTC)]
        assert list(decoded.frame.sources) == [10, 11]


def test_record_list_inference_uses_every_rows_keys():
    decoded = ParquetEncoder().decode(RecordList([{"a": 1}, {"b": "x"}, {"a": 2**40, "c": [1]}],
                                                 [0, 1, 2]))
    assert decoded.frame.table.to_pylist() == [{"a": 1, "b": None, "c": None},
                                               {"a": None, "b": "x", "c": None},
                                               {"a": 2**40, "b": None, "c": [1]}]


def test_drift_under_evolve_keeps_each_columns_first_type(tmp_path):
    """One schema for the output: new fields are added, a column's type holds across batches
    (a value that cannot be stored exactly is rejected); within the first batch of a column,
    conflicting values become text (JSON text for objects)."""
    encoder = ParquetEncoder()
    first = encoder.decode(lines_of([{"a": 1, "b": "x"}]))
    second = encoder.decode(lines_of([{"a": 1.5, "c": True}, {"a": 2.0, "c": False}]))
    assert first.frame.table.schema.names == ["a", "b"]
    assert second.frame.table.schema.names == ["a", "b", "c"]
    assert second.frame.table.schema.field("a").type == pa.int64()
    assert second.rejected == [(0, "field 'a': float value 1.5 cannot be stored in the "
                                   "column's type int64 (does not convert exactly)")]
    assert second.frame.table.to_pylist() == [{"a": 2, "b": None, "c": False}]
    # one batch: int vs string vs struct in a new column -> string (JSON text for objects)
    mixed = encoder.decode(lines_of([{"m": 1}, {"m": 2}, {"m": "x"}, {"m": {"k": [1]}},
                                     {"m": None}, {"m": 3}]))
    assert mixed.rejected == []
    assert mixed.frame.table.schema.field("m").type == pa.string()
    assert mixed.frame.table.column("m").to_pylist() == ["1", "2", "x", '{"k":[1]}', None, "3"]
    rows = read_duckdb(write_file(encoder, mixed.frame, tmp_path / "mixed.parquet"))
    assert [r["m"] for r in rows] == ["1", "2", "x", '{"k":[1]}', None, "3"]
    # compatible drift inside one batch of a new column: int + double -> double
    widened = encoder.decode(lines_of([{"w": 1}, {"w": 2.5, "z": "new"}]))
    assert widened.frame.table.select(["w", "z"]).to_pylist() == [
        {"w": 1.0, "z": None}, {"w": 2.5, "z": "new"}]


def test_drift_under_strict_keeps_the_first_schema():
    """Strict without a schema: the first batch fixes it; extras dropped, misfits rejected."""
    encoder = ParquetEncoder(on_schema_change="strict")
    first = encoder.decode(lines_of([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]))
    assert first.rejected == []
    second = encoder.decode(lines_of([{"a": 3, "b": "z", "c": 1}, {"a": "oops", "b": "w"},
                                      {"b": "only b"}]))
    assert [s for s, _ in second.rejected] == [1]
    assert second.frame.table.schema == first.frame.table.schema
    assert second.frame.table.to_pylist() == [{"a": 3, "b": "z"}, {"a": None, "b": "only b"}]


def test_strict_rejects_minority_types_within_one_batch():
    encoder = ParquetEncoder(on_schema_change="strict")
    decoded = encoder.decode(lines_of([{"a": 1}, {"a": 2}, {"a": {"k": 1}}, {"a": 4},
                                       {"a": None}]))
    assert [s for s, _ in decoded.rejected] == [2]
    assert "field 'a'" in decoded.rejected[0][1]
    assert decoded.frame.table.column("a").to_pylist() == [1, 2, 4, None]
    assert list(decoded.frame.sources) == [0, 1, 3, 4]


def test_json_lines_columns_are_added():
    records = lines_of(EVENTS)
    records.columns = {"_message_id": ["m1", "m2"], "id": ["over", "ridden"]}
    decoded = ParquetEncoder().decode(records)
    table = decoded.frame.table
    assert table.column("_message_id").to_pylist() == ["m1", "m2"]
    assert table.column("id").to_pylist() == ["over", "ridden"]
    bad = JsonLines([b"{}", b"nope", b"{}"], [0, 1, 2], columns={"m": ["x", "y", "z"]})
    assert ParquetEncoder().decode(bad).frame.table.column("m").to_pylist() == ["x", "z"]


def test_arrow_input_with_sources():
    class Wrapped:
        def __init__(self, table, sources):
            self.table, self.sources = table, sources

    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    decoded = ParquetEncoder().decode(Wrapped(table, [4, 5]))
    assert decoded.frame.table.equals(table) and list(decoded.frame.sources) == [4, 5]
    batch = pa.RecordBatch.from_pydict({"a": ["1", "zz"]})
    strict = ParquetEncoder(on_schema_change="strict")
    decoded = strict.decode(type("B", (), {"batch": batch, "sources": [0, 1],
                                           "schema": {"a": "int64"}})())
    # text is not read as a number: both rows are rejected, each with its reason
    assert [s for s, _ in decoded.rejected] == [0, 1]
    assert "string value '1'" in decoded.rejected[0][1]


def test_dict_rows_inferred_in_one_pass_match_column_by_column():
    """The struct fast path (no schema) and the column-by-column path build the same table,
    including keys missing from some rows and keys that appear late."""
    from parquet_ingestor_parquet.pylist import _by_column, table_from_rows

    rows = [{"a": 1, "n": {"x": "p"}}, {"b": ["t"], "a": 2}, {"a": None, "late": 1.5}]
    fast, rejected = table_from_rows(rows, None, True, False)
    slow, _ = _by_column(rows, None, True, False)
    assert rejected == [] and fast.equals(slow)
    assert fast.column_names == ["a", "n", "b", "late"]
    # a clash the fast path cannot take (int then text) falls back and still loses no row
    mixed, rejected = table_from_rows([{"v": 1}, {"v": "x"}], None, True, False)
    assert rejected == [] and mixed.column("v").to_pylist() == ["1", "x"]


def test_dict_rows_reuse_the_previous_batch_type_only_when_keys_match():
    """Without a schema, a batch with exactly the last batch's keys (at every level) converts
    to the last batch's type: types stay stable across files (2 after 1.5 stays double). New,
    nested-new or missing keys and values that do not convert are inferred afresh."""
    encoder = ParquetEncoder()

    def decode(*rows):
        decoded = encoder.decode(RecordList([dict(r) for r in rows], list(range(len(rows)))))
        assert decoded.rejected == []
        return decoded.frame.table

    first = decode({"a": 1.5, "n": {"x": "p"}, "t": [{"k": 1}]})
    same = decode({"t": [{"k": 2}], "a": 2, "n": {"x": "q"}}, {"a": None, "n": None, "t": None})
    assert same.schema == first.schema  # alone, this batch would infer a: int64
    assert same.to_pylist() == [{"a": 2.0, "n": {"x": "q"}, "t": [{"k": 2}]},
                                {"a": None, "n": None, "t": None}]
    new_key = decode({"a": 3, "n": {"x": "r"}, "t": [], "new": "v"})
    assert new_key.column_names == ["a", "n", "t", "new"]
    assert new_key.schema.field("a").type == pa.float64()  # the column's type holds
    assert new_key.column("new").to_pylist() == ["v"]
    decode({"a": 3, "n": {"x": "r"}, "t": [{"k": 1}]})
    nested = decode({"a": 3, "n": {"x": "r", "y": 2}, "t": [{"k": 1}]})
    assert nested.column("n").to_pylist() == [{"x": "r", "y": 2}]
    in_list = decode({"a": 3, "n": {"x": "r", "y": 2}, "t": [{"k": 1, "j": "z"}]})
    assert in_list.column("t").to_pylist() == [[{"k": 1, "j": "z"}]]
    missing = decode({"a": 4, "n": {"x": "r", "y": 2}})
    assert missing.column_names == ["a", "n", "t", "new"]  # every file has every column
    assert missing.column("t").to_pylist() == [None]
    # two levels down, in a struct and in a list of structs
    deep = decode({"d": {"e": {"f": 1.5}}, "l": [{"m": {"o": "p"}}]})
    same_deep = decode({"d": {"e": {"f": 2}}, "l": [{"m": {"o": "q"}}]})
    assert same_deep.schema == deep.schema and same_deep.column("d").to_pylist() == [
        {"e": {"f": 2.0}}]
    deeper = decode({"d": {"e": {"f": 2, "g": 3}}, "l": [{"m": {"o": "q"}}]})
    assert deeper.column("d").to_pylist() == [{"e": {"f": 2, "g": 3}}]
    decode({"d": {"e": {"f": 2, "g": 3}}, "l": [{"m": {"o": "q"}}]})
    in_list_deeper = decode({"d": {"e": {"f": 2, "g": 3}}, "l": [{"m": {"o": "q", "r": 1}}]})
    assert in_list_deeper.column("l").to_pylist() == [[{"m": {"o": "q", "r": 1}}]]
