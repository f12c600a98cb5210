"""Two writers creating the namespace at the same moment: the loser uses the winner's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor_iceberg.sink import _ensure_namespace


class _LosesTheRace:
    """A SQL catalog whose create_namespace fails as SQLite does when another process inserted
    the namespace between pyiceberg's check and its insert."""

    def __init__(self, catalog: Any) -> None:
        self._catalog = catalog

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)

    def create_namespace(self, namespace: tuple[str, ...]) -> None:
        raise RuntimeError("(sqlite3.IntegrityError) UNIQUE constraint failed: "
                           "iceberg_namespace_properties.namespace")


def _catalog(tmp_path: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("default", uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                      warehouse=f"file://{tmp_path}")


def test_a_namespace_created_meanwhile_by_another_writer_is_used(tmp_path: Path) -> None:
    winner = _catalog(tmp_path)
    winner.create_namespace(("demo",))
    _ensure_namespace(_LosesTheRace(_catalog(tmp_path)), ("demo",))  # no error


def test_a_namespace_that_cannot_be_created_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="UNIQUE constraint"):
        _ensure_namespace(_LosesTheRace(_catalog(tmp_path)), ("demo",))


def test_an_existing_namespace_is_fine(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    _ensure_namespace(catalog, ("demo",))
    _ensure_namespace(catalog, ("demo",))
    assert ("demo",) in catalog.list_namespaces()
