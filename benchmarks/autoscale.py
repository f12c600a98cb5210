"""``--workers auto`` against fixed 1, 2 and 4 flush workers, on the same input, in one run.

    uv run python benchmarks/autoscale.py [--events N] [--messages M] [--rounds R] [--quick]
                                          [--json OUT.json]

1. a per-message Python transformer (``FunctionTransformer`` with ``message.json()``, the work
   holds the GIL) -> parquet -> null sink, N events: the best fixed setting is 1-2 workers;
2. a sink whose commit sleeps 50 ms, M messages in batches of 500: the best fixed setting is
   the most workers.

Each run is a fresh child process (benchmarks/inproc.py); the settings alternate for R rounds
and each keeps its best wall time. Printed: wall and CPU seconds (user + sys) per setting, what
the autoscaler did, auto's throughput as a ratio of the fastest fixed setting's (target:
>= 0.90, i.e. within 10%), and its messages per CPU-second as a ratio of the thriftiest fixed
setting's. ``auto`` runs with its defaults (1 to 8 workers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import run_measured  # noqa: E402
from run import events_file, machine  # noqa: E402

SETTINGS = ("1", "2", "4", "auto")


def inproc(*args: str) -> dict[str, Any]:
    m = run_measured([sys.executable, str(HERE / "inproc.py"), *args]).check()
    result: dict[str, Any] = json.loads(m.stdout.strip().splitlines()[-1])
    result["peak_rss"] = m.peak_rss
    return result


def compare(label: str, runs: dict[str, dict[str, Any]], n: int) -> dict[str, Any]:
    """Print one table and auto's ratio to the best fixed setting (by wall time)."""
    fixed = [s for s in runs if s != "auto"]
    best = min(fixed, key=lambda s: runs[s]["seconds"])
    thrifty = min(fixed, key=lambda s: runs[s]["cpu_seconds"])
    auto = runs["auto"]
    ratio = runs[best]["seconds"] / auto["seconds"]
    cpu_ratio = runs[thrifty]["cpu_seconds"] / auto["cpu_seconds"]
    print(f"\n{label}")
    for setting, run in runs.items():
        did = (f"  ends at {run['workers_end']} workers after {run['scaled_up']} up / "
               f"{run['scaled_down']} down" if setting == "auto" else "")
        print(f"  workers={setting:<4} {run['seconds']:6.2f} s wall {n / run['seconds']:>10,.0f}"
              f" msg/s   cpu {run['cpu_seconds']:6.2f} s{did}")
    verdict = "ok" if ratio >= 0.9 else "BELOW TARGET"
    print(f"  auto vs the fastest fixed (workers={best}): throughput {ratio:.2f}x "
          f"(target >= 0.90: {verdict}); messages per CPU-second vs the thriftiest fixed "
          f"(workers={thrifty}): {cpu_ratio:.2f}x")
    return {"runs": runs, "best_fixed": best, "ratio": ratio, "thriftiest_fixed": thrifty,
            "cpu_ratio": cpu_ratio}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=400_000,
                    help="events for the per-message transformer")
    ap.add_argument("--messages", type=int, default=150_000,
                    help="messages for the 50 ms sink (batches of 500)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (best kept)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness works")
    ap.add_argument("--json", dest="json_out", help="also write the results here as JSON")
    args = ap.parse_args(argv)
    events = 5_000 if args.quick else args.events
    messages = 2_000 if args.quick else args.messages
    rounds = args.rounds or (1 if args.quick else 3)
    info = machine()
    print(f"machine: {info['nproc']} x {info['cpu']}, Python {info['python']}, "
          f"load avg {info['load_avg'][0]:.2f}; best of {rounds} alternating rounds")
    path = events_file(max(events, messages))

    function: dict[str, dict[str, Any]] = {}
    slow: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for setting in SETTINGS:
            r = inproc("function", path if events >= messages else events_file(events),
                       "message", setting)
            if r["rows"] != events or r["acked"] != events:
                raise SystemExit(f"function, workers={setting}: {r['rows']} rows, "
                                 f"{r['acked']} acked of {events}")
            if setting not in function or r["seconds"] < function[setting]["seconds"]:
                function[setting] = r
        for setting in SETTINGS:
            w = inproc("workers", str(messages), path, "0.05", setting)["runs"][setting]
            if w["acked"] != messages:
                raise SystemExit(f"50 ms sink, workers={setting}: acked {w['acked']}")
            if setting not in slow or w["seconds"] < slow[setting]["seconds"]:
                slow[setting] = w
    results = {
        "machine": info, "events": events, "messages": messages, "rounds": rounds,
        "function": compare(f"1. per-message Python transformer (message.json()) -> parquet "
                            f"-> null sink, {events:,} events", function, events),
        "slow_sink": compare(f"2. sink with 50 ms commits, {messages:,} messages in batches of "
                             f"500", slow, messages),
    }
    print(f"\nload avg at the end: {machine()['load_avg'][0]:.2f} (wall times on a loaded machine "
          "move a lot; CPU seconds much less)")
    if args.json_out:
        with open(args.json_out, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
