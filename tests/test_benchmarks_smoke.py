"""The benchmark harness keeps working: benchmarks/run.py --quick on tiny sizes (no timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quick_run_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--events", "3000",
         "--json", str(out)],
        capture_output=True, text=True, timeout=230,
        env={**os.environ, "BENCH_DATA": str(tmp_path / "data")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["events"] == 3000
    for section in ("limit", "ingest", "ingest_x4", "function", "sqs", "startup", "workers"):
        assert section in results, section
    assert results["ingest"]["peak_rss"] > 0 and results["ratio"]["throughput"] > 0
    assert {d: r["rows"] for d, r in results["function"].items()} == {
        "json": 3000, "message": 3000, "message_2_workers": 3000}
    assert results["function"]["message"]["decoder"] == "message.json() (orjson)"
    assert results["sqs"]["acked"] == results["sqs"]["messages"]
    assert results["startup"]["--help"]["imported"] == []
    assert set(results["workers"]["runs"]) == {"1", "2", "4"}
    assert "ratio ingest/limit" in proc.stdout


@pytest.mark.timeout(120)
def test_parquet_json_benchmark_runs(tmp_path: Path) -> None:
    """plugins/parquet/README.md's benchmark command, on a tiny size (no timings asserted)."""
    pytest.importorskip("pyarrow")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "plugins" / "parquet" / "benchmarks" / "bench_json.py"),
         "2000", "--repeat", "1"],
        capture_output=True, text=True, timeout=110,
        env={**os.environ, "BENCH_DATA": str(tmp_path / "data")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count(" 2000 rows ") >= 4 and "ratio" in proc.stdout
