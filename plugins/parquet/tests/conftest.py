"""Puts the tests' helper module (pq_helpers) on sys.path; the sample events fixture."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def events() -> Any:
    """``events(n, seed)``: realistic JSON event lines (bytes) from ``parquet_ingestor.sample``."""
    from parquet_ingestor.sample import iter_events

    return lambda n, seed=1: list(iter_events(n, seed))
