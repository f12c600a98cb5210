"""A/B of the process-wide tuning (parquet_ingestor.tuning, gcpause) in one run.

    python benchmarks/tuning_ab.py [EVENTS] [REPEATS] [WORKERS]

Runs the FunctionTransformer benchmark (inproc.py ``function``, message.json(), parquet, null
sink) in fresh child processes, alternating three variants:

* ``shipped``: switch interval 20 ms, gen-0 threshold 50k, collector paused around decode with
  a young collection after 1 s of overlapping pauses;
* ``untuned``: the interpreter's own switch interval and threshold (pause kept);
* ``unbounded-pause``: as shipped, without the young collection (the collector may stay off
  for the whole run, as before).

Prints records per CPU-second and wall second for each (median of the repeats) and the ratio of
each to ``shipped``. Events come from ``parquet_ingestor.sample`` (cached, like run.py).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("shipped", "untuned", "unbounded-pause")

CHILD = """
import json, sys
sys.path.insert(0, {here!r})
from parquet_ingestor import gcpause, tuning
variant = {variant!r}
if variant == "untuned":
    tuning.SWITCH_INTERVAL = 0.0
    tuning.GEN0_THRESHOLD = 0
elif variant == "unbounded-pause":
    gcpause.MAX_PAUSE = float("inf")
import inproc
print(json.dumps(inproc.bench_function({path!r}, "message", {workers!r})))
"""


def main(argv: list[str]) -> int:
    events = int(argv[0]) if argv else 200_000
    repeats = int(argv[1]) if len(argv) > 1 else 3
    workers = argv[2] if len(argv) > 2 else "2"
    from parquet_ingestor.sample import ensure_cache

    path = ensure_cache(events)
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            code = CHILD.format(here=str(HERE), variant=variant, path=path, workers=workers)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True)
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = {}
    for variant, runs in results.items():
        summary[variant] = {
            "per_cpu_second": statistics.median(r["rows"] / r["cpu_seconds"] for r in runs),
            "per_second": statistics.median(r["rows"] / r["seconds"] for r in runs),
        }
    base = summary["shipped"]
    for variant, numbers in summary.items():
        print(f"{variant:16} {numbers['per_cpu_second']:>9,.0f} rec/CPU-s "
              f"({numbers['per_cpu_second'] / base['per_cpu_second']:.2f}x) "
              f"{numbers['per_second']:>9,.0f} rec/s "
              f"({numbers['per_second'] / base['per_second']:.2f}x)")
    print(json.dumps({"events": events, "repeats": repeats, "workers": int(workers),
                      "summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
