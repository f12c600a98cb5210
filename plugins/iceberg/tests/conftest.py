"""Fixtures of the Iceberg sink tests; puts the helper module (iceberg_helpers) on sys.path."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor_iceberg.sink import IcebergSink

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


@pytest.fixture
def make_sink(warehouse: Path) -> Iterator[Callable[..., IcebergSink]]:
    """Build started sinks on a local warehouse; each is closed at the end of the test."""
    sinks: list[IcebergSink] = []

    def make(**options: Any) -> IcebergSink:
        options.setdefault("table", "demo.events")
        options.setdefault("warehouse", str(warehouse))
        context = options.pop("context", None)
        sink = IcebergSink(**options)
        sink.start(context)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()
