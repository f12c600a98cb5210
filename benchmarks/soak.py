"""Soak: ``ingest`` on steady stdin input for a long time; RSS, threads and open files must
stay flat. Not part of CI.

    uv run python benchmarks/soak.py [--minutes 20] [--rate 4000] [--sample 5]

The benchmark feeds ``ingest --source file --source-opt path=-`` (Parquet when the plugin is
installed, else JSON lines) at ``--rate`` lines per second, writing into a temporary directory
whose committed files it deletes as it goes (so the disk does not fill). Every ``--sample``
seconds it records the process's RSS, thread count and open file descriptors. The first fifth
of the run is warm-up. It prints, per measure, the mean of the first and last quarter of the
rest and their ratio, and "flat" when every ratio is within 5%; then stops ``ingest`` with
SIGTERM and checks that every line sent was written (exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOLERANCE = 0.05
CLI = "from parquet_ingestor.cli import main; main()"


def event(i: int, rng: random.Random) -> bytes:
    """One realistic event line: ids, a time, numbers, a nested object, a list."""
    record = {
        "id": f"evt-{i:012d}",
        "created_at": f"2024-05-01T12:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "user": {"id": rng.randrange(1_000_000),
                 "country": rng.choice(["DE", "FR", "US", "JP", "BR"])},
        "amount": round(rng.uniform(0, 500), 2),
        "tags": rng.sample(["a", "b", "c", "d", "e"], rng.randrange(4)),
        "text": "x" * rng.randrange(20, 120),
    }
    return json.dumps(record).encode() + b"\n"


def has_parquet() -> bool:
    try:
        import parquet_ingestor_parquet  # noqa: F401
    except ImportError:
        return False
    return True


class Feeder(threading.Thread):
    """Writes ``rate`` lines per second into the pipe, in 20 slices a second."""

    def __init__(self, pipe, rate: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.pipe = pipe
        self.rate = rate
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random(17)
        per_tick = max(1, self.rate // 20)
        next_tick = time.monotonic()
        while not self.stop.is_set():
            chunk = b"".join(event(self.sent + k, rng) for k in range(per_tick))
            try:
                self.pipe.write(chunk)
                self.pipe.flush()
            except (BrokenPipeError, ValueError):
                return
            self.sent += per_tick
            next_tick += 0.05
            self.stop.wait(max(0.0, next_tick - time.monotonic()))


def count_rows(path: Path) -> int:
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


def sweep(out: Path) -> int:
    """Count the rows of committed files and delete them; returns the rows."""
    rows = 0
    for path in list(out.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            try:
                rows += count_rows(path)
            except OSError:
                continue
            path.unlink()
    return rows


def sample(proc) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    with proc.oneshot():
        return proc.memory_info().rss / 2**20, proc.num_threads(), proc.num_fds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=4000, help="lines per second")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    args = parser.parse_args()
    import psutil

    work = Path(tempfile.mkdtemp(prefix="ingest-soak-"))
    out = work / "out"
    encoder = "parquet" if has_parquet() else "jsonl"
    stderr = (work / "ingest.stderr").open("wb")
    child = subprocess.Popen(
        [sys.executable, "-c", CLI, "--source", "file", "--source-opt", "path=-",
         "--sink", "file", "--sink-opt", f"path={out}", "--sink-opt", "fsync=false",
         "--encoder", encoder, "--batch-max-age", "2s", "--log-level", "WARNING"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, cwd=work)
    proc = psutil.Process(child.pid)
    feeder = Feeder(child.stdin, args.rate)
    feeder.start()
    print(f"soak: {args.minutes:g} min, {args.rate} lines/s, encoder {encoder}, "
          f"sampling every {args.sample:g}s (pid {child.pid}, work dir {work})")
    samples: list[tuple[float, float, int, int]] = []
    written = 0
    started = time.monotonic()
    end = started + args.minutes * 60
    try:
        while time.monotonic() < end:
            time.sleep(args.sample)
            if child.poll() is not None:
                print(f"soak: ingest exited early with {child.returncode}")
                return 1
            rss, threads, fds = sample(proc)
            samples.append((time.monotonic() - started, rss, threads, fds))
            written += sweep(out)
            print(f"  {samples[-1][0]:7.0f}s  rss {rss:7.1f} MiB  threads {threads:3d}  "
                  f"fds {fds:3d}  sent {feeder.sent:,}  written {written:,}", flush=True)
    finally:
        feeder.stop.set()
        feeder.join(5)
        child.send_signal(signal.SIGTERM)  # drains: every line read is written
        code = child.wait(120)
        written += sweep(out)
    measured = samples[len(samples) // 5:]  # after warm-up
    quarter = max(1, len(measured) // 4)
    flat = True
    print(f"\n{'measure':8s} {'first':>10s} {'last':>10s} {'ratio':>7s}")
    for index, name in ((1, "rss MiB"), (2, "threads"), (3, "fds")):
        first = statistics.mean(s[index] for s in measured[:quarter])
        last = statistics.mean(s[index] for s in measured[-quarter:])
        ratio = last / first if first else 1.0
        flat = flat and abs(ratio - 1) <= TOLERANCE
        print(f"{name:8s} {first:10.1f} {last:10.1f} {ratio:7.3f}")
    print(f"\nsent {feeder.sent:,} lines, written {written:,}, ingest exit {code}")
    ok = flat and written == feeder.sent and code == 0
    print("flat within 5%" if flat else "NOT flat within 5%",
          "" if written == feeder.sent else f"; {feeder.sent - written:,} lines missing")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
