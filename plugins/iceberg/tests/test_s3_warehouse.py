"""An s3:// warehouse on moto's server (real HTTP) with the embedded SQLite catalog."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from iceberg_helpers import by_id, duckdb_rows, scan_rows, write_file

pytestmark = [pytest.mark.aws, pytest.mark.timeout(120)]


def test_commit_sets_on_an_s3_warehouse(make_sink, moto_endpoint, unique_name, tmp_path):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=unique_name)
    sink = make_sink(warehouse=f"s3://{unique_name}/warehouse",
                     catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                     **{"catalog.s3.endpoint": moto_endpoint})
    expected = []
    for n in range(2):
        tx = sink.begin()
        for i in range(3):
            batch = [{"id": n * 100 + i * 10 + j, "name": f"r{j}"} for j in range(10)]
            expected += batch
            write_file(tx, f"{n}/{i}.parquet", batch, chunk=4096)
        tx.commit({"ingest.commit-id": f"s3-{n}"})
    table = sink.table()
    assert [s.summary["ingest.commit-id"] for s in table.snapshots()] == ["s3-0", "s3-1"]
    assert table.location().startswith(f"s3://{unique_name}/warehouse/demo")
    prefix = table.location().removeprefix(f"s3://{unique_name}/") + "/data/"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=unique_name)["Contents"]}
    assert sum(k.startswith(prefix) and k.endswith(".parquet") for k in keys) == 6
    assert by_id(scan_rows(table)) == by_id(expected)

    def fetch(path: str) -> str:
        key = path.removeprefix(f"s3://{unique_name}/")
        local = tmp_path / "copies" / key
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(s3.get_object(Bucket=unique_name, Key=key)["Body"].read())
        return str(local)

    assert by_id(duckdb_rows(table, fetch)) == by_id(expected)


def test_abort_deletes_staged_objects(make_sink, moto_endpoint, unique_name, tmp_path: Path):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=unique_name)
    sink = make_sink(warehouse=f"s3://{unique_name}/wh",
                     catalog_uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                     **{"catalog.s3.endpoint": moto_endpoint})
    tx = sink.begin()
    write_file(tx, "a.parquet", [{"id": 1}])

    def files() -> list[str]:  # pyarrow leaves an empty "folder/" marker after a delete
        listing = s3.list_objects_v2(Bucket=unique_name).get("Contents", [])
        return [o["Key"] for o in listing if not o["Key"].endswith("/")]

    [staged] = files()
    assert staged.startswith("wh/demo") and staged.endswith("/events/data/a.parquet")
    tx.abort()
    assert files() == []
    assert sink.table() is None
