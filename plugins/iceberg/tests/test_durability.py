"""Local warehouses: data files, the new metadata file and the manifest list are fsynced
before a commit is acknowledged (object stores are durable when their upload completes)."""

from __future__ import annotations

import os
from pathlib import Path

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
