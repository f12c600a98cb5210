"""Local warehouses: data files, the new metadata file, the manifest list and the new manifests
are fsynced before a commit is acknowledged (object stores are durable when their upload completes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor_iceberg import files
from parquet_ingestor_iceberg.files import local_path, sync_local


def test_local_path_recognises_local_locations_only() -> None:
    assert local_path("file:///w/t/data/a.parquet") == "/w/t/data/a.parquet"
    assert local_path("/w/t/data/a.parquet") == "/w/t/data/a.parquet"
    assert local_path("s3://bucket/w/a.parquet") is None
    assert local_path("gs://bucket/a.parquet") is None


def test_sync_local_fsyncs_each_file_and_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    a, b = tmp_path / "data" / "a.parquet", tmp_path / "m.json"
    a.write_bytes(b"x")
    b.write_bytes(b"y")
    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync",
                        lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    sync_local(f"file://{a}", str(b), "s3://bucket/other.parquet", None)
    assert sorted(synced) == sorted([str(a), str(b), str(a.parent), str(tmp_path)])


def test_a_commit_fsyncs_what_the_catalog_now_points_at(
    make_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything a snapshot names, down to its manifests, is fsynced before commit() returns
    (the core acks after it)."""
    from iceberg_helpers import write_file

    sink = make_sink()
    first = sink.begin()
    write_file(first, "a/0.parquet", [{"id": 1}])
    first.commit({"ingest.commit-id": "one"})
    synced: list[str] = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync",
                        lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    tx = sink.begin()
    write_file(tx, "b/0.parquet", [{"id": 2}])
    write_file(tx, "b/1.parquet", [{"id": 3}])
    tx.commit({"ingest.commit-id": "two"})
    table = sink.table().refresh()
    snapshot = table.current_snapshot()
    new_manifests = [m.manifest_path for m in snapshot.manifests(table.io)
                     if m.added_snapshot_id == snapshot.snapshot_id]
    assert new_manifests
    expected = [local_path(table.metadata_location), local_path(snapshot.manifest_list)]
    expected += [local_path(p) for p in new_manifests]
    expected += [f"{table.location()}/data/b/0.parquet".removeprefix("file://"),
                 f"{table.location()}/data/b/1.parquet".removeprefix("file://")]
    missing = [p for p in expected if p not in synced]
    assert not missing, f"not fsynced: {missing}"
    old = [m.manifest_path for m in snapshot.manifests(table.io)
           if m.added_snapshot_id != snapshot.snapshot_id]
    assert all(local_path(p) not in synced for p in old)  # only what this commit wrote
