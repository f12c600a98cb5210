"""Registration: the entry point names the encoder without importing pyarrow."""

from __future__ import annotations

import subprocess
import sys

import pytest
from parquet_ingestor.plugins import build_registry

pytestmark = pytest.mark.timeout(120)


def test_plugin_import_does_not_import_pyarrow():
    code = ("import sys, parquet_ingestor_parquet.plugin as p; "
            "assert p.ingest_register_encoders; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'pandas', "
            "'fastparquet')]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_registered_through_the_entry_point():
    registry = build_registry()
    spec = registry.get("encoder", "parquet")
    assert spec.distribution == "parquet-ingestor-parquet"
    assert {o.name for o in spec.options} == {
        "engine", "compression", "compression_level", "row_group_size", "row_group_bytes",
        "dictionary", "schema", "on_schema_change", "compat", "timestamp_unit", "time_fields", "max_depth", "max_keys"}
    encoder = spec.create({"compression": "zstd", "compression_level": "5",
                           "row_group_size": "1000"})
    assert encoder.extension == "parquet"
    assert encoder.content_type == "application/vnd.apache.parquet"
    assert encoder.settings.compression_level == 5 and encoder.settings.row_group_size == 1000


def test_cli_lists_the_encoder():
    code = "from parquet_ingestor.cli import main; main(['plugins'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "parquet" in done.stdout and "parquet-ingestor-parquet" in done.stdout
