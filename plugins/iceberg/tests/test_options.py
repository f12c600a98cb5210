"""Options and bad input: each a one-line ConfigError naming the problem (the CLI exits 2)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.testing import free_port
from parquet_ingestor_iceberg.options import SpecField, parse_partition_spec, settings_from_options
from parquet_ingestor_iceberg.sink import IcebergSink


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = IcebergSink(table="demo.events").settings
    assert (s.namespace, s.table, s.identifier) == (("demo",), "events", "demo.events")
    assert s.warehouse == str(tmp_path / "warehouse")
    assert s.catalog_uri == f"sqlite:///{tmp_path / 'warehouse' / 'catalog.db'}"
    assert (s.catalog_name, s.catalog, s.create, s.schema_policy) == ("default", None, True,
                                                                      "evolve")
    remote = settings_from_options(table="a.b.c", warehouse="s3://bucket/wh/")
    assert remote.namespace == ("a", "b") and remote.warehouse == "s3://bucket/wh"
    assert remote.catalog_uri == f"sqlite:///{Path.cwd() / 'catalog.db'}"


@pytest.mark.parametrize(("given", "expected"), [({}, 128 << 20), ({"target_file_size": "0"}, 0)])
def test_the_sink_asks_for_large_files_unless_the_run_says(tmp_path, given, expected):
    from parquet_ingestor.config import ComponentChoice, RunConfig, build_pipeline
    from parquet_ingestor.plugins import get_registry

    (tmp_path / "in.jsonl").touch()
    config = RunConfig(source=ComponentChoice("file", {"path": str(tmp_path / "in.jsonl")}),
                       sink=ComponentChoice("iceberg", {"table": "a.b"}), pipeline=given)
    assert build_pipeline(config, get_registry()).settings.target_file_size == expected


def test_catalog_passthrough_keeps_pyiceberg_keys():
    sink = IcebergSink(**{"table": "a.b", "catalog.s3.access-key-id": "K", "catalog.uri": "x"})
    assert sink.settings.catalog_properties == {"s3.access-key-id": "K", "uri": "x"}


@pytest.mark.parametrize(("text", "expected"), [
    ("day(at)", (SpecField("day", "at"),)),
    ("hour( at ), identity(country)", (SpecField("hour", "at"), SpecField("identity", "country"))),
    ("truncate(4, name),year(at)", (SpecField("truncate[4]", "name"), SpecField("year", "at"))),
])
def test_partition_spec_parses(text, expected):
    assert parse_partition_spec(text) == expected


@pytest.mark.parametrize(("options", "match"), [
    ({"table": "events"}, "option 'table': expected NAMESPACE.TABLE, got 'events'"),
    ({"table": "demo."}, "option 'table': expected NAMESPACE.TABLE"),
    ({"table": "a.b", "partition_spec": "weekly(at)"}, "unknown transform 'weekly'"),
    ({"table": "a.b", "partition_spec": "day at"}, "expected transform\\(field\\)"),
    ({"table": "a.b", "partition_spec": "bucket(16, id)"}, "bucket\\(\\) is not supported"),
    ({"table": "a.b", "partition_spec": "truncate(id)"}, "truncate needs a width"),
    ({"table": "a.b", "warehouse": "ftp://x/y"}, "option 'warehouse'"),
    ({"table": "a.b", "schema_policy": "loose"}, "option 'schema_policy'"),
])
def test_bad_options_are_one_line(options, match):
    with pytest.raises(ConfigError, match=match) as info:
        IcebergSink(**options)
    assert "\n" not in str(info.value)


def test_missing_table_with_create_false(make_sink):
    with pytest.raises(ConfigError, match="table 'demo.events' does not exist \\(and create=false"):
        make_sink(create=False)


def test_unknown_catalog(make_sink, monkeypatch):
    monkeypatch.delenv("PYICEBERG_CATALOG__NOPE__URI", raising=False)
    with pytest.raises(ConfigError, match="option 'catalog': unknown catalog 'nope'"):
        make_sink(catalog="nope")


def test_unreachable_catalogs(make_sink, tmp_path):
    with pytest.raises(ConfigError, match="option 'catalog_uri': cannot reach catalog"):
        make_sink(catalog_uri=f"sqlite:///{tmp_path}/no/such/dir/catalog.db")
    url = f"http://127.0.0.1:{free_port()}"  # a port nobody listens on
    with pytest.raises(ConfigError, match="option 'catalog': cannot open catalog 'prod'"):
        make_sink(catalog="prod", **{"catalog.uri": url, "catalog.type": "rest"})


def test_partition_spec_naming_a_field_missing_from_an_existing_table(make_sink):
    from iceberg_helpers import write_file

    sink = make_sink()
    tx = sink.begin()
    write_file(tx, "a.parquet", [{"id": 1}])
    tx.commit({})
    with pytest.raises(ConfigError, match="no field 'created_at' in the table \\(fields: id\\)"):
        make_sink(partition_spec="day(created_at)")


def test_partition_spec_must_match_how_files_are_split(make_sink):
    from types import SimpleNamespace

    hourly = SimpleNamespace(event_time_field="at", key_template="%Y/%m/%d/%H/{random}.{ext}")
    daily = SimpleNamespace(event_time_field="at", key_template="%Y/%m/%d/{random}.{ext}")
    make_sink(partition_spec="day(at)", context=SimpleNamespace(settings=hourly))
    with pytest.raises(ConfigError, match="hour\\(at\\) is finer than the key template's"):
        make_sink(partition_spec="hour(at)", context=SimpleNamespace(settings=daily))
    with pytest.raises(ConfigError, match="identity\\(country\\) needs \\{field:country\\}"):
        make_sink(partition_spec="identity(country)", context=SimpleNamespace(settings=daily))
    with pytest.raises(ConfigError, match="day\\(ts\\) needs --partition-by event:ts"):
        make_sink(partition_spec="day(ts)", context=SimpleNamespace(settings=daily))


def test_the_readme_documents_every_option():
    from parquet_ingestor_iceberg.options import ICEBERG_OPTIONS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)`", readme, re.MULTILINE))
    assert documented == {opt.name for opt in ICEBERG_OPTIONS}
