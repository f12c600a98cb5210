"""All the performance benchmarks of issue 7, side by side, in one command.

    uv run python benchmarks/run.py [--events N] [--quick] [--repeat R] [--json OUT.json]

1. the vectorized limit (benchmarks/limit.py, pyarrow alone) and
   ``ingest --source file --sink file`` on the same N events, alternated, best of R each;
   output row counts checked; throughput ratio ingest / limit;
2. the same ingest on 4 x N events (the file four times, through a directory of symlinks):
   peak RSS must stay flat;
3. a per-message Python transformer (FunctionTransformer) -> parquet -> null sink, decoding
   with json.loads and with message.json() (orjson), one flush worker (per core), and with
   message.json() on two workers; best of R each by CPU time;
4. the SQS source over a stub client that answers instantly: receive, batch, ack;
5. ``ingest --help`` / ``ingest plugins`` start-up time and the heavy modules they import, and
   the fixed cost of a run: one line through ``ingest`` and through the limit;
6. flush workers 1 / 2 / 4 against a sink whose commit sleeps 50 ms.

Every measured run is a child process: wall time, CPU time and peak RSS come from ``wait4``.
Throughput is never measured through moto.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import Measured, compile_sources, mib, parquet_rows, run_measured  # noqa: E402

PYTHON = sys.executable
INGEST = str(Path(sys.executable).with_name("ingest"))
#: limit.py's explicit schema, as the json transformer's schema= file spells it
LIMIT_SCHEMA = {"id": "string", "created_at": "timestamp[ms, UTC]", "user_id": "int64",
                "type": "string", "amount": "float64", "country": "string", "payload": "string",
                "tags": "list<string>", "ctx": "struct<ip: string, ua: string>"}


def events_file(n: int) -> str:
    """The cached JSON-lines file of n sample events (made once, see parquet_ingestor.sample)."""
    from parquet_ingestor.sample import ensure_cache

    return ensure_cache(n)


def ingest_packages() -> list[str]:
    """The core and every installed plugin's top-level package: what ``ingest`` imports."""
    from importlib.metadata import entry_points

    from parquet_ingestor.plugins import ENTRY_POINT_GROUP

    plugins = {ep.value.split(".")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return ["parquet_ingestor", *sorted(plugins - {"parquet_ingestor"})]


def limit_script() -> str:
    return str(HERE / "limit.py")


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((ln.split(":", 1)[1].strip() for ln in handle
                          if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        import pyarrow

        arrow = pyarrow.__version__
    except ImportError:
        arrow = "-"
    return {"nproc": os.cpu_count(), "cpu": model or platform.processor(),
            "python": platform.python_version(), "pyarrow": arrow,
            "load_avg": os.getloadavg()}


def run_limit(path: str, work: Path) -> Measured:
    out = work / "limit.parquet"
    out.unlink(missing_ok=True)
    m = run_measured([PYTHON, limit_script(), path, str(out)]).check()
    m.stdout = str(parquet_rows(str(out)))
    out.unlink()
    return m


def run_ingest(path: str, work: Path, extra: list[str] | None = None) -> tuple[Measured, int]:
    out = work / "ingest-out"
    shutil.rmtree(out, ignore_errors=True)
    argv = [INGEST, "--source", "file", "--source-opt", f"path={path}",
            "--sink", "file", "--sink-opt", f"path={out}", *(extra or [])]
    m = run_measured(argv).check()
    rows = parquet_rows(str(out))
    shutil.rmtree(out, ignore_errors=True)
    return m, rows


def inproc(*args: str) -> tuple[Measured, dict[str, Any]]:
    m = run_measured([PYTHON, str(HERE / "inproc.py"), *args]).check()
    return m, json.loads(m.stdout.strip().splitlines()[-1])


def four_times(path: str, work: Path) -> str:
    """A directory holding the events file four times (symlinks), for the file source."""
    folder = work / "x4"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i in range(4):
        (folder / f"part{i}.jsonl").symlink_to(path)
    return str(folder)


# ---------------------------------------------------------------------------------- report


def rate(n: float, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def line(label: str, records: int, nbytes: int, m: Measured, note: str = "") -> str:
    return (f"  {label:<34} {rate(records, m.seconds):>11,.0f} rec/s {mib(rate(nbytes, m.seconds)):>7.1f} MB/s"
            f" {m.seconds:>7.2f} s  cpu {m.cpu_seconds:>6.2f} s  RSS {mib(m.peak_rss):>6.0f} MiB  {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="events for the ingest runs")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness works")
    ap.add_argument("--repeat", type=int, default=None, help="runs of limit/ingest (best kept)")
    ap.add_argument("--json", dest="json_out", help="also write the results here as JSON")
    ap.add_argument("--skip", action="append", default=[],
                    choices=("limit", "x4", "function", "sqs", "startup", "workers"),
                    help="leave a section out (repeatable)")
    args = ap.parse_args(argv)
    quick = args.quick
    n = 5_000 if quick and args.events == 1_000_000 else args.events
    repeat = args.repeat or (1 if quick else 2)
    fn_events = min(n, 200_000)
    sqs_messages = 5_000 if quick else 200_000
    worker_messages = 2_000 if quick else 10_000
    delay = 0.02 if quick else 0.05
    results: dict[str, Any] = {"machine": machine(), "events": n, "quick": quick}
    skip = set(args.skip)

    path = events_file(n)
    size = os.path.getsize(path)
    print(f"machine: {results['machine']['nproc']} x {results['machine']['cpu']}, "
          f"Python {results['machine']['python']}, pyarrow {results['machine']['pyarrow']}, "
          f"load avg {results['machine']['load_avg'][0]:.2f}")
    print(f"events: {n:,} ({mib(size):.1f} MiB) in {path}")
    compiled = compile_sources(ingest_packages())
    print(f"bytecode compiled in {len(compiled)} source tree(s) (editable installs)\n")

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        work = Path(tmp)

        # 1. limit vs ingest, alternated so both see the same machine state
        print(f"1. json -> parquet, file -> file (best of {repeat})")
        limits: list[Measured] = []
        ingests: list[Measured] = []
        for _ in range(repeat):
            if "limit" not in skip:
                m = run_limit(path, work)
                if int(m.stdout) != n:
                    raise SystemExit(f"limit wrote {m.stdout} rows, expected {n}")
                limits.append(m)
            m, rows = run_ingest(path, work)
            if rows != n:
                raise SystemExit(f"ingest wrote {rows} rows, expected {n}")
            ingests.append(m)
        best_ingest = min(ingests, key=lambda m: m.seconds)
        results["ingest"] = _summary(best_ingest, n, size, ingests)
        if limits:
            best_limit = min(limits, key=lambda m: m.seconds)
            results["limit"] = _summary(best_limit, n, size, limits)
            print(line("limit.py (pyarrow alone)", n, size, best_limit))
        print(line("ingest --source file --sink file", n, size, best_ingest,
                   f"rows {n:,} ok"))
        if limits:
            ratio = best_limit.seconds / best_ingest.seconds
            cpu_ratio = best_limit.cpu_seconds / best_ingest.cpu_seconds
            results["ratio"] = {"throughput": ratio, "cpu": cpu_ratio}
            print(f"  ratio ingest/limit: throughput {ratio:.2f}x (target >= 0.5, goal 0.8), "
                  f"CPU efficiency {cpu_ratio:.2f}x")
        # like for like with limit.py: its schema, no fsync (one run, for reference)
        schema_file = work / "schema.json"
        schema_file.write_text(json.dumps(LIMIT_SCHEMA))
        m, rows = run_ingest(path, work, ["--transformer-opt", f"schema={schema_file}",
                                          "--sink-opt", "fsync=false"])
        if rows != n:
            raise SystemExit(f"ingest (schema) wrote {rows} rows, expected {n}")
        results["ingest_schema"] = _summary(m, n, size, [m])
        note = (f"ratio {best_limit.seconds / m.seconds:.2f}x" if limits else "")
        print(line("  same, limit's schema, no fsync", n, size, m, note))

        # 2. 4x the events: peak RSS must stay flat
        if "x4" not in skip:
            print("\n2. the same on 4 x events (RSS must stay flat)")
            folder = four_times(path, work)
            m4, rows4 = run_ingest(folder, work)
            if rows4 != 4 * n:
                raise SystemExit(f"ingest x4 wrote {rows4} rows, expected {4 * n}")
            growth = m4.peak_rss / best_ingest.peak_rss - 1
            results["ingest_x4"] = _summary(m4, 4 * n, 4 * size, [m4])
            results["ingest_x4"]["rss_growth"] = growth
            print(line(f"ingest x4 ({4 * n:,} events)", 4 * n, 4 * size, m4,
                       f"rows ok; RSS {growth:+.1%} vs 1x (target < 400 MiB, <= +10%)"))

        # 3. per-message Python transformer, decoding with json.loads and with message.json()
        if "function" not in skip:
            print(f"\n3. FunctionTransformer (decode + one derived field per message) "
                  f"-> parquet -> null sink (best of {repeat})")
            fpath = events_file(fn_events)
            results["function"] = {}
            # per core: one flush worker (the work holds the GIL); then 2 workers, wall rate
            for decoder, workers in (("json", "1"), ("message", "1"), ("message", "2")):
                runs = []
                for _ in range(repeat):  # best of R by CPU time: the machine is shared
                    m, r = inproc("function", fpath, decoder, workers)
                    if r["rows"] != fn_events or r["acked"] != fn_events:
                        raise SystemExit(f"function benchmark wrote {r['rows']} rows, "
                                         f"acked {r['acked']}")
                    runs.append((r["cpu_seconds"], m, r))
                _, m, r = min(runs, key=lambda run: run[0])
                per_core = r["records"] / r["cpu_seconds"]
                label = decoder if workers == "1" else f"{decoder}_{workers}_workers"
                results["function"][label] = {
                    **r, "rate": rate(r["records"], r["seconds"]),
                    "per_cpu_second": per_core, "peak_rss": m.peak_rss}
                print(f"  {r['decoder']}, {workers} worker(s): {r['records']:,} records, "
                      f"{rate(r['records'], r['seconds']):,.0f} rec/s wall, "
                      f"{per_core:,.0f} rec per CPU-second (target >= 200k/core); "
                      f"RSS {mib(m.peak_rss):.0f} MiB")
                print("    stages alone (rec/s, one 15k batch, GC paused): " + ", ".join(
                    f"{k} {v:,.0f}" for k, v in r["stages"].items()))

        # 4. SQS source overhead over a stub client
        if "sqs" not in skip:
            print("\n4. SQS source over a stub client: pollers -> receive -> batch -> ack")
            m, r = inproc("sqs", str(sqs_messages), path)
            if r["acked"] != sqs_messages:
                raise SystemExit(f"sqs benchmark acked {r['acked']} of {sqs_messages}")
            results["sqs"] = {**r, "rate": rate(r["messages"], r["seconds"]),
                              "per_cpu_second": r["messages"] / r["cpu_seconds"]}
            print(f"  {r['messages']:,} messages: {results['sqs']['rate']:,.0f} msg/s wall "
                  f"(target >= 50k), {results['sqs']['per_cpu_second']:,.0f} per CPU-second; "
                  f"calls {r['calls']}")

        # 5. CLI start-up
        if "startup" not in skip:
            print("\n5. CLI start-up (median of 5)")
            results["startup"] = {}
            for cmd in (["--help"], ["plugins"]):
                times = [run_measured([INGEST, *cmd]).check().seconds
                         for _ in range(1 if quick else 5)]
                _, imported = inproc("imports", *cmd)
                med = statistics.median(times)
                results["startup"][" ".join(cmd)] = {"seconds": med,
                                                     "imported": imported["imported"]}
                print(f"  ingest {' '.join(cmd):<10} {med * 1000:6.0f} ms (target < 300 ms); "
                      f"heavy modules imported: {imported['imported'] or 'none'}")
            # the fixed cost of a run: one line through ingest and through limit.py, alternated
            one = work / "one.jsonl"
            with open(path, "rb") as handle:
                one.write_bytes(handle.readline())
            pairs = [(run_ingest(str(one), work)[0], run_limit(str(one), work))
                     for _ in range(1 if quick else 5)]
            ingest_cpu = min(i.cpu_seconds for i, _ in pairs)
            limit_cpu = min(lim.cpu_seconds for _, lim in pairs)
            results["startup"]["one line"] = {
                "ingest_seconds": min(i.seconds for i, _ in pairs), "ingest_cpu": ingest_cpu,
                "limit_seconds": min(lim.seconds for _, lim in pairs), "limit_cpu": limit_cpu}
            print(f"  one line, best of {len(pairs)}: ingest "
                  f"{results['startup']['one line']['ingest_seconds'] * 1000:.0f} ms "
                  f"(cpu {ingest_cpu * 1000:.0f} ms), limit.py "
                  f"{results['startup']['one line']['limit_seconds'] * 1000:.0f} ms "
                  f"(cpu {limit_cpu * 1000:.0f} ms): a run's fixed cost above pyarrow's "
                  f"{(ingest_cpu - limit_cpu) * 1000:.0f} ms of CPU")

        # 6. flush workers overlap
        if "workers" not in skip:
            print(f"\n6. flush workers vs a sink whose commit sleeps {delay * 1000:.0f} ms "
                  f"({worker_messages:,} messages, 500 per batch)")
            _, r = inproc("workers", str(worker_messages), path, str(delay), "1", "2", "4")
            one = r["runs"]["1"]["seconds"]
            for workers, run in r["runs"].items():
                if run["acked"] != worker_messages:
                    raise SystemExit(f"workers={workers}: acked {run['acked']}")
                run["speedup"] = one / run["seconds"]
                print(f"  workers={workers}: {run['seconds']:6.2f} s, {run['files']} files, "
                      f"speed-up {run['speedup']:.2f}x")
            results["workers"] = r

    if args.json_out:
        with open(args.json_out, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


def _summary(best: Measured, records: int, nbytes: int, runs: list[Measured]) -> dict[str, Any]:
    return {"seconds": best.seconds, "cpu_seconds": best.cpu_seconds, "peak_rss": best.peak_rss,
            "records_per_s": rate(records, best.seconds), "mb_per_s": mib(rate(nbytes, best.seconds)),
            "all_seconds": [m.seconds for m in runs]}


if __name__ == "__main__":
    sys.exit(main())
