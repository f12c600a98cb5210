"""file -> Iceberg (local warehouse, embedded SQLite catalog) against the pyarrow limit.

    uv run python benchmarks/iceberg.py [--events N] [--repeat R] [--quick] [--json OUT.json]

1. the vectorized limit (pyarrow alone: JSON lines -> one snappy Parquet file, 5 MiB chunks,
   an explicit schema) and ``ingest --source file --sink iceberg`` (its defaults: files of
   ~128 MiB across batches, the sink's ``pipeline_defaults``) with the same schema on the
   same N events, alternated, best of R each; rows checked in the table's snapshot summary;
   throughput ratio ingest / limit (issue #13 asks >= 0.7); ``ingest --sink file`` on the same
   events for reference (what the table costs on top of the pipeline);
2. one run with a snapshot per 5 MiB batch (``--target-file-size 0``: many small commits, as
   a run that needs acks within seconds makes);
3. commit latency per snapshot (median, p95), from the sink's ``committed snapshot`` lines;
4. one run partitioned by event time (``--partition-by event:created_at``, daily files, so a
   ``day(created_at)`` spec).

Every measured run is a child process (wall, CPU and peak RSS from ``wait4``); ``ingest`` runs
without pandas, as a user's install does (see INGEST). The events are the team's sample events
(``parquet_ingestor.sample``), cached in ``$BENCH_DATA``; nothing outside the checkout is read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import Measured, run_measured  # noqa: E402

PYTHON = sys.executable
#: ``ingest`` as a user's install runs it: without pandas. The dev environment has pandas (for
#: fastparquet), and pyarrow.dataset, which pyiceberg imports, imports it when present: ~1.5 s
#: of CPU at start that no ``pip install parquet-ingestor[iceberg]`` pays.
INGEST = [PYTHON, "-c", """
import sys
class NoPandas:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError("no module named 'pandas' (hidden by the benchmark)")
sys.meta_path.insert(0, NoPandas())
from parquet_ingestor.cli import main
sys.argv[0] = "ingest"
main()
"""]
#: the limit's schema, as the json transformer's schema= file spells it
SCHEMA = {"id": "string", "created_at": "timestamp[ms, UTC]", "user_id": "int64",
          "type": "string", "amount": "float64", "country": "string", "payload": "string",
          "tags": "list<string>", "ctx": "struct<ip: string, ua: string>"}
COMMITTED = re.compile(r"committed snapshot \d+ to \S+: (\d+) files, (\d+) rows in ([\d.]+)s")


def events_file(n: int) -> Path:
    """The cached JSON-lines file of n sample events (made once, see parquet_ingestor.sample)."""
    from parquet_ingestor.sample import ensure_cache

    return Path(ensure_cache(n))


def limit(src: str, dst: str) -> None:
    """The vectorized limit, run as a child: pyarrow reads and writes, nothing else."""
    import io

    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("id", pa.string()), ("created_at", pa.timestamp("ms", tz="UTC")),
        ("user_id", pa.int64()), ("type", pa.string()), ("amount", pa.float64()),
        ("country", pa.string()), ("payload", pa.string()), ("tags", pa.list_(pa.string())),
        ("ctx", pa.struct([("ip", pa.string()), ("ua", pa.string())]))])
    options = pj.ParseOptions(explicit_schema=schema)
    rows = 0
    with pq.ParquetWriter(dst, schema, compression="snappy") as writer, open(src, "rb") as f:
        while chunk := f.read(5 << 20):
            table = pj.read_json(io.BytesIO(chunk + f.readline()), parse_options=options)
            writer.write_table(table)
            rows += table.num_rows
    print(rows)


def run_limit(src: Path, work: Path) -> Measured:
    out = work / "limit.parquet"
    m = run_measured([PYTHON, __file__, "--limit", str(src), str(out)]).check()
    out.unlink()
    return m


def run_ingest(src: Path, work: Path, extra: list[str]) -> tuple[Measured, int, list[float]]:
    """One ``ingest`` into a fresh table; returns the run, the table's rows, commit seconds."""
    warehouse = work / "warehouse"
    shutil.rmtree(warehouse, ignore_errors=True)
    argv = [*INGEST, "--source", "file", "--source-opt", f"path={src}",
            "--transformer-opt", f"schema={work / 'schema.json'}",
            "--sink", "iceberg", "--sink-opt", "table=bench.events",
            "--sink-opt", f"warehouse={warehouse}", *extra]
    m = run_measured(argv, cwd=str(work)).check()
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("default", uri=f"sqlite:///{warehouse / 'catalog.db'}",
                         warehouse=str(warehouse))
    table = catalog.load_table("bench.events")
    snapshot = table.current_snapshot()
    rows = int(snapshot.summary["total-records"]) if snapshot else 0
    commits = [float(match.group(3)) for match in COMMITTED.finditer(m.stderr)]
    if len(commits) != len(table.snapshots()):
        raise SystemExit(f"{len(commits)} commits logged, {len(table.snapshots())} snapshots")
    shutil.rmtree(warehouse, ignore_errors=True)
    return m, rows, commits


def run_file_sink(src: Path, work: Path) -> Measured:
    """The same pipeline into plain Parquet files: what the table costs on top."""
    out = work / "files"
    shutil.rmtree(out, ignore_errors=True)
    m = run_measured([*INGEST, "--source", "file", "--source-opt", f"path={src}",
                      "--transformer-opt", f"schema={work / 'schema.json'}",
                      "--sink", "file", "--sink-opt", f"path={out}"], cwd=str(work)).check()
    shutil.rmtree(out, ignore_errors=True)
    return m


def run_validate(src: Path, work: Path, sink: list[str]) -> Measured:
    """Start-up alone: ``ingest --validate`` builds and starts the components, receives nothing."""
    return run_measured([*INGEST, "--source", "file", "--source-opt", f"path={src}",
                         "--sink", *sink, "--validate"], cwd=str(work)).check()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def show(label: str, n: int, m: Measured, note: str = "") -> str:
    return (f"  {label:<40} {n / m.seconds:>11,.0f} rec/s {m.seconds:>7.2f} s  "
            f"cpu {m.cpu_seconds:>6.2f} s  RSS {m.peak_rss / 2**20:>6.0f} MiB  {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs of limit and ingest (best kept)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness works")
    ap.add_argument("--json", dest="json_out", help="also write the results here as JSON")
    ap.add_argument("--limit", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.limit:
        limit(*args.limit)
        return 0
    n = 5_000 if args.quick else args.events
    repeat = 1 if args.quick else args.repeat
    results: dict[str, Any] = {"events": n}
    with tempfile.TemporaryDirectory(prefix="bench-iceberg-") as tmp:
        work = Path(tmp)
        src = events_file(n)
        size = src.stat().st_size
        (work / "schema.json").write_text(json.dumps(SCHEMA))
        print(f"{n:,} events, {size / 2**20:.0f} MiB of JSON lines; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        print(f"1. json -> parquet: the limit vs file -> iceberg (best of {repeat})")
        limits, ingests, plain = [], [], []
        commits: list[float] = []
        for _ in range(repeat):
            m = run_limit(src, work)
            if int(m.stdout) != n:
                raise SystemExit(f"limit wrote {m.stdout} rows, expected {n}")
            limits.append(m)
            plain.append(run_file_sink(src, work))
            m, rows, seconds = run_ingest(src, work, [])
            if rows != n:
                raise SystemExit(f"iceberg table holds {rows} rows, expected {n}")
            ingests.append(m)
            commits += seconds
        best_limit = min(limits, key=lambda m: m.seconds)
        best = min(ingests, key=lambda m: m.seconds)
        ratio = best_limit.seconds / best.seconds
        best_plain = min(plain, key=lambda m: m.seconds)
        print(show("limit (pyarrow alone)", n, best_limit))
        print(show("ingest --sink file (reference)", n, best_plain,
                   f"ratio {best_limit.seconds / best_plain.seconds:.2f}x"))
        print(show("ingest --sink iceberg", n, best, f"rows {n:,} ok"))
        print(f"  ratio ingest/limit: throughput {ratio:.2f}x (target >= 0.7), CPU efficiency "
              f"{best_limit.cpu_seconds / best.cpu_seconds:.2f}x")
        print(f"  iceberg / file sink: throughput {best_plain.seconds / best.seconds:.2f}x, "
              f"extra CPU {best.cpu_seconds - best_plain.cpu_seconds:.2f} s (pyiceberg's import "
              "and the commits)")
        starts = {name: min((run_validate(src, work, sink) for _ in range(3)),
                            key=lambda m: m.seconds)
                  for name, sink in (("file", ["file", "--sink-opt", f"path={work / 'v'}"]),
                                     ("iceberg", ["iceberg", "--sink-opt", "table=v.v",
                                                  "--sink-opt", f"warehouse={work / 'vw'}"]))}
        extra = starts["iceberg"].seconds - starts["file"].seconds
        print(f"  start-up (ingest --validate): file {starts['file'].seconds:.2f} s, iceberg "
              f"{starts['iceberg'].seconds:.2f} s (cpu {starts['iceberg'].cpu_seconds:.2f} s: "
              f"importing pyiceberg, opening the catalog); without those {extra:.2f} s, "
              f"ratio ingest/limit {best_limit.seconds / (best.seconds - extra):.2f}x")
        results["startup_extra_seconds"] = extra
        results["ratio_without_startup"] = best_limit.seconds / (best.seconds - extra)
        results["file_sink_seconds"] = best_plain.seconds
        results["limit_seconds"] = best_limit.seconds
        results["ingest_seconds"] = best.seconds
        results["ratio"] = ratio
        results["cpu_seconds"] = {"limit": best_limit.cpu_seconds, "file": best_plain.cpu_seconds,
                                  "iceberg": best.cpu_seconds}
        results["load_avg"] = os.getloadavg()

        print("2. a snapshot per 5 MiB batch: --target-file-size 0")
        m, rows, seconds = run_ingest(src, work, ["--target-file-size", "0"])
        if rows != n:
            raise SystemExit(f"iceberg table holds {rows} rows, expected {n}")
        print(show("ingest --sink iceberg, per batch", n, m,
                   f"ratio {best_limit.seconds / m.seconds:.2f}x, {len(seconds)} snapshots"))
        results["per_batch_ratio"] = best_limit.seconds / m.seconds
        results["per_batch_cpu_seconds"] = m.cpu_seconds
        commits += seconds

        print("3. commit latency per snapshot (all runs above)")
        print(f"  {len(commits)} snapshots: median {statistics.median(commits) * 1000:.0f} ms, "
              f"p95 {p95(commits) * 1000:.0f} ms, max {max(commits) * 1000:.0f} ms")
        results["commit_median_ms"] = statistics.median(commits) * 1000
        results["commit_p95_ms"] = p95(commits) * 1000
        results["commits"] = len(commits)

        print("4. partitioned by event time: daily files, day(created_at)")
        m, rows, seconds = run_ingest(src, work, ["--partition-by", "event:created_at",
                                                  "--key-template", "%Y/%m/%d/{random}.{ext}"])
        if rows != n:
            raise SystemExit(f"iceberg table holds {rows} rows, expected {n}")
        print(show("ingest --sink iceberg --partition-by", n, m,
                   f"ratio {best_limit.seconds / m.seconds:.2f}x, {len(seconds)} snapshots, "
                   f"commit median {statistics.median(seconds) * 1000:.0f} ms "
                   f"p95 {p95(seconds) * 1000:.0f} ms"))
        results["partitioned_ratio"] = best_limit.seconds / m.seconds
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
