"""Files written by both engines read back row by row with pyarrow, fastparquet and DuckDB."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from parquet_ingestor.errors import ConfigError
from parquet_ingestor.records import RecordList
from parquet_ingestor_parquet.encoder import ParquetEncoder
from pq_helpers import (
    NESTED_RECORDS,
    NESTED_SPEC,
    READERS,
    as_stored,
    expected_rows,
    json_lines,
    read_duckdb,
    read_pyarrow,
    record_list,
    write_file,
)

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
@pytest.mark.parametrize("path", ["json", "pylist"])
def test_nested_round_trip(tmp_path, engine, reader, path):
    encoder = ParquetEncoder(engine=engine, schema=None)
    records = (json_lines(NESTED_RECORDS, NESTED_SPEC) if path == "json"
               else record_list(NESTED_RECORDS))
    if path == "pylist":
        records.schema = NESTED_SPEC
    decoded = encoder.decode(records)
    assert decoded.rejected == []
    assert list(decoded.frame.sources) == list(range(len(NESTED_RECORDS)))
    file = write_file(encoder, decoded.frame, tmp_path / "out.parquet")
    assert READERS[reader](file) == expected_rows(NESTED_RECORDS)


@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
def test_engines_agree_on_realistic_events(tmp_path, engine, events):
    lines = events(3000)
    encoder = ParquetEncoder(engine=engine, row_group_size=1000)
    decoded = encoder.decode(json_lines_from(lines))
    file = write_file(encoder, decoded.frame, tmp_path / "events.parquet")
    want = [as_stored(json.loads(line)) for line in lines]
    for reader in (read_pyarrow, read_duckdb):
        assert reader(file) == want
    assert pq.ParquetFile(file).metadata.num_row_groups == 3


def json_lines_from(lines):
    from parquet_ingestor.records import JsonLines

    return JsonLines(lines, list(range(len(lines))))


@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip", "lz4", "none"])
def test_every_compression(tmp_path, engine, codec):
    encoder = ParquetEncoder(engine=engine, compression=codec)
    decoded = encoder.decode(json_lines(NESTED_RECORDS, NESTED_SPEC))
    file = write_file(encoder, decoded.frame, tmp_path / f"{codec}.parquet")
    column = pq.ParquetFile(file).metadata.row_group(0).column(0)
    expected = {"none": {"UNCOMPRESSED"}, "lz4": {"LZ4", "LZ4_RAW"}}.get(codec, {codec.upper()})
    assert column.compression in expected
    for reader in READERS.values():
        assert reader(file) == expected_rows(NESTED_RECORDS)


@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
def test_compression_level_is_used(tmp_path, engine, events):
    lines = events(2000)
    sizes = {}
    for level in (1, 19):
        encoder = ParquetEncoder(engine=engine, compression="zstd", compression_level=level)
        decoded = encoder.decode(json_lines_from(lines))
        file = write_file(encoder, decoded.frame, tmp_path / f"l{level}.parquet")
        sizes[level] = file.stat().st_size
        assert read_pyarrow(file) == [as_stored(json.loads(line)) for line in lines]
    assert sizes[19] < sizes[1]


@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
def test_file_metadata_keys(tmp_path, engine):
    encoder = ParquetEncoder(engine=engine)
    decoded = encoder.decode(json_lines(NESTED_RECORDS, NESTED_SPEC))
    file = write_file(encoder, decoded.frame, tmp_path / "m.parquet",
                      {"ingest.records": "5", "ingest.messages": "5",
                       "ingest.min_event_time": "2024-05-01T10:15:30+00:00"})
    meta = {k.decode(): v.decode() for k, v in pq.ParquetFile(file).metadata.metadata.items()}
    assert meta["ingest.records"] == "5"
    assert meta["ingest.messages"] == "5"
    assert meta["ingest.min_event_time"] == "2024-05-01T10:15:30+00:00"
    assert meta["ingest.writer"].startswith("parquet-ingestor ")
    assert len(meta["ingest.schema_fingerprint"]) == 16
    # DuckDB sees the same keys
    import duckdb

    keys = {row[0].decode() for row in duckdb.sql(
        f"SELECT key FROM parquet_kv_metadata('{file}')").fetchall()}
    assert {"ingest.records", "ingest.writer", "ingest.schema_fingerprint"} <= keys


def test_fingerprint_follows_schema(tmp_path):
    encoder = ParquetEncoder()
    prints = []
    for records in ([{"a": 1}], [{"a": 2}], [{"a": 3, "b": "x"}]):
        decoded = encoder.decode(json_lines(records))
        file = write_file(encoder, decoded.frame, tmp_path / "f.parquet")
        prints.append(pq.ParquetFile(file).metadata.metadata[b"ingest.schema_fingerprint"])
    assert prints[0] == prints[1] != prints[2]


def test_stream_without_seek_and_statistics(tmp_path):
    """The sink's stream only writes; statistics and dictionary encoding are on."""

    class WriteOnly:
        def __init__(self):
            self.chunks = []
            self.closed = False

        def write(self, data):
            self.chunks.append(bytes(data))
            return len(data)

        def tell(self):
            return sum(map(len, self.chunks))

        def flush(self):
            pass

        def writable(self):
            return True

    encoder = ParquetEncoder()
    decoded = encoder.decode(json_lines(NESTED_RECORDS, NESTED_SPEC))
    stream = WriteOnly()
    writer = encoder.open(stream, decoded.frame)
    writer.write(decoded.frame)
    writer.close({})
    assert not stream.closed
    path = tmp_path / "w.parquet"
    path.write_bytes(b"".join(stream.chunks))
    group = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings
                 for i in range(group.num_columns)}
    column = group.column(1)  # name
    assert column.path_in_schema == "name"
    assert column.statistics is not None and column.statistics.has_min_max
    # dictionary=auto: unique names are stored plain; columns inside lists keep a dictionary
    assert not any("DICTIONARY" in e for e in encodings["name"])
    assert "RLE_DICTIONARY" in encodings["tags.list.element"]
    assert read_pyarrow(path) == expected_rows(NESTED_RECORDS)
    assert READERS["fastparquet"](path) == expected_rows(NESTED_RECORDS)


@pytest.mark.parametrize("mode", ["auto", "always", "never"])
def test_dictionary_modes(tmp_path, mode):
    """auto: dictionary for the columns that repeat in a sample of the file's rows (and any
    column inside a list, which fastparquet needs); the data reads back the same either way."""
    rows = [{"id": f"id-{i}", "kind": ["click", "view"][i % 2], "n": i,
             "ctx": {"ip": f"10.0.0.{i}", "ua": "curl"}, "tags": [f"t{i}"]} for i in range(500)]
    encoder = ParquetEncoder(dictionary=mode)
    decoded = encoder.decode(RecordList([dict(r) for r in rows], list(range(len(rows)))))
    path = write_file(encoder, decoded.frame, tmp_path / f"{mode}.parquet")
    group = pq.ParquetFile(path).metadata.row_group(0)
    dictionary = {group.column(i).path_in_schema for i in range(group.num_columns)
                  if "RLE_DICTIONARY" in group.column(i).encodings}
    expected = {
        "auto": {"kind", "ctx.ua", "tags.list.element"},
        "always": {"id", "kind", "n", "ctx.ip", "ctx.ua", "tags.list.element"},
        "never": set(),
    }[mode]
    assert dictionary == expected
    assert read_pyarrow(path) == rows
    assert read_duckdb(path) == rows


def test_dictionary_option_is_checked():
    with pytest.raises(ConfigError, match="dictionary.*'sometimes' is not one of auto"):
        ParquetEncoder(dictionary="sometimes")


def test_writes_several_frames_into_one_file(tmp_path):
    encoder = ParquetEncoder(row_group_size=2)
    decoded = encoder.decode(json_lines(NESTED_RECORDS, NESTED_SPEC))
    frame = decoded.frame
    with open(tmp_path / "s.parquet", "wb") as stream:
        writer = encoder.open(stream, frame)
        writer.write(frame.slice(0, 3))
        writer.write(frame.slice(3, 5))
        writer.close({})
    assert read_pyarrow(tmp_path / "s.parquet") == expected_rows(NESTED_RECORDS)
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_row_groups == 3


@pytest.mark.parametrize(("options", "named"), [
    ({"engine": "polars"}, "engine"),
    ({"compression": "brotli2"}, "compression"),
    ({"compression": "gzip", "compression_level": 99}, "compression_level"),
    ({"row_group_size": 0}, "row_group_size"),
    ({"on_schema_change": "loose"}, "on_schema_change"),
    ({"schema": "/nonexistent/schema.json"}, "schema"),
    ({"schema": "no_such_module_x:Event"}, "no_such_module_x"),
])
def test_bad_options_are_config_errors(options, named):
    with pytest.raises(ConfigError, match=named):
        ParquetEncoder(**options)
