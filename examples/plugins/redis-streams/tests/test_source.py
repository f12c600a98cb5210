"""The source passes parquet-ingestor's source contract, registers, and runs in a pipeline.

Point :meth:`make_source` and :meth:`options` at your system; every test below uses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.testing import SourceContract
from parquet_ingestor_redis import plugin
from parquet_ingestor_redis.source import RedisSource


class TestRedisSource(SourceContract):
    # The starter keeps unacknowledged messages in memory, so a new consumer does not see the
    # ones an old consumer left behind. Set True once your system keeps them (queues, streams).
    reopen_resumes = False

    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path: Path) -> None:
        self.tmp = tmp_path

    def options(self, bodies: list[bytes]) -> dict[str, Any]:
        """TODO: publish ``bodies`` to your system; return the source's options as a user
        would give them (``--source-opt K=V``: strings)."""
        path = self.tmp / "messages.txt"
        path.write_bytes(b"".join(body + b"\n" for body in bodies))
        return {"path": str(path)}

    def make_source(self, bodies: list[bytes]) -> Callable[[], RedisSource]:
        options = self.options(bodies)
        spec = self.registry.get("source", "redis")
        return lambda: spec.create(options)  # a new consumer per call

    @pytest.fixture(autouse=True)
    def _registry(self, plugin_registry: Any) -> None:
        # The plugin as `ingest` loads it: by name, options parsed from strings, lazy factory.
        self.registry = plugin_registry(("redis", plugin))

    def test_builds_the_class(self) -> None:
        source = self.make_source([])()
        assert isinstance(source, RedisSource)
        source.close()

    def test_runs_in_a_pipeline(self, run_pipeline: Any) -> None:
        rows = [{"id": i, "text": f"row {i}"} for i in range(40)]
        outcome = run_pipeline(self.make_source([json.dumps(row).encode() for row in rows])())
        assert sorted(outcome.rows, key=lambda r: r["id"]) == rows
        assert outcome.rejected == 0
        assert outcome.pipeline.metrics.counts["acked"] == len(rows)
