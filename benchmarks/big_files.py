"""Files that outlive a batch (issue 12, item 4): target sizes and peak RSS, in one run.

    uv run python benchmarks/big_files.py [--events N] [--target SIZE] [--hourly-events N]

1. ``ingest --source file --sink file --batch-max-bytes 5MiB --target-file-size 64MiB`` on N
   generated events (default 1M, ~345 MB of JSON): every file but the last of each partition
   should be within +-15% of the target; peak RSS (goal < 400 MiB) and throughput against the
   vectorized pyarrow limit (benchmarks/limit.py) on the same file, measured in this run;
2. the same with ``--partition-by event:created_at`` and an hourly key template, the events'
   times spread over 24 hours, so 24 partitions are open at once: peak RSS (goal < 500 MiB);
3. run 1 again with ``--memory-limit`` (default 256MiB): peak RSS against the limit.

Row groups per file are read from the footers (open writers share a memory budget, so with 24
partitions open the row groups are smaller).

Each run is a child process (wall, CPU and peak RSS from ``wait4``). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import mib, run_measured  # noqa: E402
from run import INGEST, LIMIT_SCHEMA, PYTHON, events_file, limit_script  # noqa: E402

SIZES = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def size(text: str) -> int:
    for unit, factor in SIZES.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def spread_over_24_hours(path: str, out: Path) -> str:
    """The events with created_at moved to one of 24 hours (round robin by line)."""
    target = out / "hourly.jsonl"
    rng = random.Random(7)
    with open(path, "rb") as src, open(target, "wb") as dst:
        for i, line in enumerate(src):
            event = json.loads(line)
            event["created_at"] = (f"2024-05-01T{i % 24:02d}:{rng.randrange(60):02d}:"
                                   f"{rng.randrange(60):02d}.000Z")
            dst.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
    return str(target)


def ingest(path: str, work: Path, schema: Path, extra: list[str]) -> tuple[object, dict]:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    argv = [INGEST, "--source", "file", "--source-opt", f"path={path}",
            "--transformer-opt", f"schema={schema}", "--sink", "file",
            "--sink-opt", f"path={out}", "--sink-opt", "fsync=false", *extra]
    m = run_measured(argv).check()
    import pyarrow.parquet as pq

    files: dict[str, list[tuple[str, int, int, int]]] = defaultdict(list)
    for p in out.rglob("*.parquet"):
        if p.name.startswith("."):
            continue
        meta = pq.read_metadata(p)
        files[str(p.parent.relative_to(out))].append(
            (p.name, p.stat().st_size, meta.num_rows, meta.num_row_groups))
    shutil.rmtree(out, ignore_errors=True)
    return m, files


def report(label: str, m: object, files: dict, target: int, events: int,
           limit: object | None) -> None:
    sizes_ok, sizes_all = 0, 0
    rows = 0
    worst = 0.0
    groups: list[float] = []
    for entries in files.values():
        entries.sort()  # keys start with {unix_ns} (the open time): the last opened sorts last
        rows += sum(r for _, _, r, _ in entries)
        groups += [r / g for _, _, r, g in entries if g]
        for _, nbytes, _, _ in entries[:-1]:
            sizes_all += 1
            dev = abs(nbytes - target) / target
            worst = max(worst, dev)
            sizes_ok += dev <= 0.15
    ratio = (f"; {limit.seconds / m.seconds:.2f}x the pyarrow limit's wall time, "
             f"{limit.cpu_seconds / m.cpu_seconds:.2f}x its CPU time" if limit else "")
    print(f"{label}: {rows:,} rows ({events:,} events) in {sum(map(len, files.values()))} files, "
          f"{len(files)} partitions; {sizes_ok}/{sizes_all} non-last files within +-15% of "
          f"{mib(target):.0f} MiB (worst {worst:.0%}); sizes "
          f"{', '.join(sorted({f'{mib(b):.1f}' for e in files.values() for _, b, _, _ in e}))} "
          f"MiB; ~{sum(groups) / max(1, len(groups)):,.0f} rows per row group; "
          f"{m.seconds:.1f} s, cpu {m.cpu_seconds:.1f} s, peak RSS {mib(m.peak_rss):.0f} MiB"
          f"{ratio}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--target", default="64MiB")
    ap.add_argument("--hourly-events", type=int, default=None,
                    help="events for the 24-partition run (default: --events)")
    ap.add_argument("--memory-limit", default="256MiB")
    args = ap.parse_args(argv)
    target = size(args.target)
    path = events_file(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        schema = work / "schema.json"
        schema.write_text(json.dumps(LIMIT_SCHEMA))
        limit_out = work / "limit.parquet"
        limit = run_measured([PYTHON, limit_script(), path, str(limit_out)]).check()
        limit_out.unlink()
        print(f"pyarrow limit: {args.events:,} events in {limit.seconds:.1f} s, cpu "
              f"{limit.cpu_seconds:.1f} s, peak RSS {mib(limit.peak_rss):.0f} MiB")
        common = ["--batch-max-bytes", "5MiB", "--target-file-size", args.target,
                  "--key-template", "%Y/%m/%d/{unix_ns}-{random}.{ext}"]
        m, files = ingest(path, work, schema, common)
        report("one partition", m, files, target, args.events, limit)
        hourly_n = args.hourly_events or args.events
        hourly = spread_over_24_hours(events_file(hourly_n), work)
        m, files = ingest(hourly, work, schema, [
            "--batch-max-bytes", "5MiB", "--target-file-size", args.target,
            "--partition-by", "event:created_at",
            "--key-template", "hour=%H/{unix_ns}-{random}.{ext}"])
        report("24 hourly partitions", m, files, target, hourly_n, None)
        m, files = ingest(path, work, schema, [*common, "--memory-limit", args.memory_limit])
        report(f"one partition, --memory-limit {args.memory_limit}", m, files, target,
               args.events, limit)
        os.unlink(hourly)
    return 0


if __name__ == "__main__":
    sys.exit(main())
