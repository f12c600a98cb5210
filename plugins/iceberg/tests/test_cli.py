"""``ingest ... --sink iceberg`` as a user runs it: end to end, bad input, a SIGKILL mid-commit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from iceberg_helpers import by_id, duckdb_rows, scan_rows

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: runs the CLI in a process whose sink SIGKILLs itself when it is about to commit, if asked
KILLER = """
import os, signal, sys
from parquet_ingestor_iceberg import sink
original = sink.IcebergSink._commit
def _commit(self, files, summary):
    if os.environ.get("KILL_BEFORE_COMMIT"):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, files, summary)
sink.IcebergSink._commit = _commit
from parquet_ingestor.cli import main
sys.argv[0] = "ingest"
main()
"""


def ingest_command() -> list[str]:
    exe = shutil.which("ingest", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "parquet_ingestor.cli"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(command or ingest_command()), *args], cwd=cwd,
                          env=env or dict(os.environ), capture_output=True, text=True,
                          timeout=150)


def events(path: Path, n: int, start: int = 0) -> list[dict[str, Any]]:
    rows = [{"id": i, "name": f"n{i}", "amount": i * 0.5} for i in range(start, start + n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def open_table(warehouse: Path, name: str = "demo.events") -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("default", uri=f"sqlite:///{warehouse / 'catalog.db'}",
                         warehouse=str(warehouse))
    return catalog.load_table(name)


def test_file_to_iceberg_with_the_embedded_default(tmp_path):
    rows = events(tmp_path / "events.jsonl", 3000)
    done = run(["--source", "file", "--source-opt", "path=events.jsonl",
                "--sink", "iceberg", "--sink-opt", "table=demo.events",
                "--batch-max-records", "1000", "--target-file-size", "0"], tmp_path)
    assert done.returncode == 0, done.stderr
    table = open_table(tmp_path / "warehouse")  # ./warehouse and its catalog.db: the defaults
    assert by_id(scan_rows(table)) == rows
    assert by_id(duckdb_rows(table)) == rows
    commits = [line for line in done.stderr.splitlines() if "committed snapshot" in line]
    assert len(commits) == len(table.snapshots()) >= 3  # one per batch (no --target-file-size)
    assert sum(int(s.summary["ingest.records"]) for s in table.snapshots()) == 3000
    assert "Defaulting to PyArrow FileIO" not in done.stderr


@pytest.mark.aws
def test_s3_warehouse_honours_aws_endpoint_url(tmp_path, aws_env, moto_endpoint, unique_name):
    import boto3

    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=unique_name)
    rows = events(tmp_path / "events.jsonl", 500)
    done = run(["--source", "file", "--source-opt", "path=events.jsonl", "--sink", "iceberg",
                "--sink-opt", "table=demo.events",
                "--sink-opt", f"warehouse=s3://{unique_name}/wh"], tmp_path, aws_env)
    assert done.returncode == 0, done.stderr
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("default", uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                         warehouse=f"s3://{unique_name}/wh", **{"s3.endpoint": moto_endpoint})
    table = catalog.load_table("demo.events")
    assert table.location().startswith(f"s3://{unique_name}/wh/")
    assert by_id(scan_rows(table)) == rows


# each ConfigError of the sink is tested in process (test_options.py); these check that they
# reach the user as exit 2 and one line, at each stage: options, the catalog, the table, the spec
@pytest.mark.parametrize(("options", "expected"), [
    (["table=events"], "sink 'iceberg' option 'table': expected NAMESPACE.TABLE, got 'events'"),
    (["table=demo.events", "catalog_uri=sqlite:////nonexistent/dir/c.db"],
     "sink 'iceberg' option 'catalog_uri': cannot reach catalog"),
    (["table=demo.events", "create=false"], "table 'demo.events' does not exist"),
    (["table=demo.events", "partition_spec=day(ts)"], "day(ts) needs --partition-by event:ts"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, options, expected):
    events(tmp_path / "events.jsonl", 10)
    args = ["--source", "file", "--source-opt", "path=events.jsonl", "--sink", "iceberg"]
    for option in options:
        args += ["--sink-opt", option]
    done = run(args, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_sigkill_between_writing_and_committing(tmp_path):
    """Killed after its files are written, before the snapshot: nothing is visible; the rerun
    (the source redelivers everything never acked) adds every row exactly once; the dead
    run's files are orphans, which remove_orphan_files deletes."""
    from parquet_ingestor_iceberg.maintenance import orphan_files, remove_orphan_files

    rows = events(tmp_path / "events.jsonl", 2000)
    args = ["--source", "file", "--source-opt", "path=events.jsonl", "--sink", "iceberg",
            "--sink-opt", "table=demo.events", "--batch-max-records", "500", "--workers", "2"]
    killer = [sys.executable, "-c", KILLER]
    seed = run([*args[:3], "path=seed.jsonl", *args[4:]], tmp_path, command=killer) \
        if events(tmp_path / "seed.jsonl", 1, start=-1) else None
    assert seed is not None and seed.returncode == 0, seed.stderr if seed else ""
    env = {**os.environ, "KILL_BEFORE_COMMIT": "1"}
    killed = run(args, tmp_path, env, command=killer)
    assert killed.returncode == -signal.SIGKILL
    table = open_table(tmp_path / "warehouse")
    data = Path(table.location().removeprefix("file://")) / "data"
    assert data.is_relative_to(tmp_path / "warehouse")
    written = list(data.rglob("*.parquet"))
    assert len(written) >= 2  # the seed's file and at least one of the killed run's
    assert by_id(scan_rows(table)) == [{"id": -1, "name": "n-1", "amount": -0.5}]

    again = run(args, tmp_path, command=killer)
    assert again.returncode == 0, again.stderr
    table = open_table(tmp_path / "warehouse")
    expected = [{"id": -1, "name": "n-1", "amount": -0.5}, *rows]
    assert by_id(scan_rows(table)) == expected
    assert by_id(duckdb_rows(table)) == expected
    orphans = orphan_files(table, older_than=0)
    assert orphans and all(not Path(p).samefile(Path(q)) for p in orphans
                           for q in [t.file.file_path for t in table.scan().plan_files()])
    assert orphan_files(table) == []  # younger than a day: maybe a running writer's
    assert remove_orphan_files(table, older_than=0) == orphans
    assert by_id(scan_rows(table)) == expected
    assert sorted(str(p) for p in data.rglob("*.parquet")) == sorted(
        t.file.file_path for t in table.scan().plan_files())


def test_cli_start_does_not_import_pyiceberg(tmp_path):
    probe = ("import sys\nfrom parquet_ingestor.cli import main\n"
             "try:\n    main(['plugins'])\nexcept SystemExit:\n    pass\n"
             "print('HEAVY=' + ','.join(m for m in ('pyiceberg', 'sqlalchemy', 'pyarrow') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert "iceberg" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "HEAVY="


def test_iceberg_demo(tmp_path):
    done = run(["iceberg-demo", "--events", "1500"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Row count (pyiceberg scan): 1,500; distinct ids: 1,500" in done.stdout
    assert "partitioned by: day(created_at), identity(country)" in done.stdout
    table = open_table(tmp_path / "iceberg-demo" / "warehouse")
    assert len(table.scan().to_arrow()) == 1500
    assert f"Snapshots ({len(table.snapshots())}):" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_catalog_configured_the_pyiceberg_way(tmp_path):
    """``catalog=NAME`` with PYICEBERG_CATALOG__NAME__* variables (here a SQL catalog; REST,
    Glue and Hive are configured the same way)."""
    rows = events(tmp_path / "events.jsonl", 300)
    warehouse = tmp_path / "prod-warehouse"
    warehouse.mkdir()
    env = {**os.environ, "PYICEBERG_CATALOG__PROD__URI": f"sqlite:///{warehouse / 'prod.db'}",
           "PYICEBERG_CATALOG__PROD__WAREHOUSE": str(warehouse)}
    done = run(["--source", "file", "--source-opt", "path=events.jsonl", "--sink", "iceberg",
                "--sink-opt", "catalog=prod", "--sink-opt", "table=analytics.events"],
               tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "warehouse").exists()  # the embedded default was not used
    from pyiceberg.catalog.sql import SqlCatalog

    table = SqlCatalog("prod", uri=f"sqlite:///{warehouse / 'prod.db'}",
                       warehouse=str(warehouse)).load_table("analytics.events")
    assert by_id(scan_rows(table)) == rows
