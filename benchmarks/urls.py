"""Backfill from an object store: the same run reading N events as one ``s3://`` ``.jsonl.gz``
object (moto's server, in this process) and as a local uncompressed file, ratio in one run.

    uv run python benchmarks/urls.py                 # 1M events (the issue's target: >= 0.5x)
    uv run python benchmarks/urls.py --events 20000  # quick

Both runs are ``ingest --source file ... --sink file`` in a child process with the same encoder;
only ``path=`` differs. Wall and CPU seconds (user+sys of the child; moto's own CPU is in this
harness, not counted) are printed, and the s3/local throughput ratio. The machine may be shared:
compare the CPU ratio too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Measured, run_measured  # noqa: E402

CLI = "from parquet_ingestor.cli import main; main()"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_events(path: Path, events: int) -> int:
    from parquet_ingestor.sample import iter_events

    size = 0
    with path.open("wb") as handle:
        for event in iter_events(events):
            line = event.rstrip(b"\n") + b"\n"
            handle.write(line)
            size += len(line)
    return size


def ingest(path: str, out: Path, encoder: str, env: dict[str, str]) -> Measured:
    shutil.rmtree(out, ignore_errors=True)
    return run_measured([sys.executable, "-c", CLI, "--source", "file", "--source-opt",
                         f"path={path}", "--encoder", encoder, "--sink", "file", "--sink-opt",
                         f"path={out}", "--log-format", "json"], env=env).check()


def rows_of(m: Measured) -> int:
    for line in m.stderr.splitlines():
        if '"event": "stopped"' in line:
            return int(json.loads(line)["rows_written"])
    raise RuntimeError("no 'stopped' line in the log:\n" + m.stderr[-2000:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--encoder", default="parquet", help="the runs' encoder (parquet, jsonl)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON too")
    args = ap.parse_args(argv)

    import boto3
    from moto.server import ThreadedMotoServer

    work = Path(tempfile.mkdtemp(prefix="bench-urls-"))
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
             "AWS_DEFAULT_REGION": "us-east-1"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "AWS_"))}
    env.update(creds, AWS_ENDPOINT_URL=endpoint)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        local = work / "events.jsonl"
        size = write_events(local, args.events)
        packed = gzip.compress(local.read_bytes(), compresslevel=6)
        s3 = boto3.client("s3", endpoint_url=endpoint, **{
            "aws_access_key_id": "bench", "aws_secret_access_key": "bench",
            "region_name": "us-east-1"})
        s3.create_bucket(Bucket="bench-archive")
        s3.put_object(Bucket="bench-archive", Key="2026/11/events.jsonl.gz", Body=packed)
        url = "s3://bench-archive/2026/11/*.jsonl.gz"
        print(f"{args.events} events, {size / 1e6:.1f} MB local uncompressed, "
              f"{len(packed) / 1e6:.1f} MB as {url} (moto); encoder {args.encoder}")
        runs = {"local": ingest(str(local), work / "out-local", args.encoder, env),
                "s3_gz": ingest(url, work / "out-s3", args.encoder, env)}
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    results: dict[str, object] = {"events": args.events, "encoder": args.encoder}
    for name, m in runs.items():
        rows = rows_of(m)
        if rows != args.events:
            raise RuntimeError(f"{name}: {rows} rows written, expected {args.events}")
        results[name] = {"seconds": m.seconds, "cpu_seconds": m.cpu_seconds,
                         "events_per_s": args.events / m.seconds, "peak_rss": m.peak_rss}
        print(f"  {name:6} {m.seconds:7.2f} s wall  {m.cpu_seconds:7.2f} s CPU  "
              f"{args.events / m.seconds:>10,.0f} events/s  peak RSS {m.peak_rss / 2**20:.0f} MiB")
    ratio = runs["local"].seconds / runs["s3_gz"].seconds
    cpu_ratio = runs["local"].cpu_seconds / runs["s3_gz"].cpu_seconds
    results["ratio"] = {"throughput": ratio, "cpu": cpu_ratio}
    print(f"ratio s3 .jsonl.gz / local (throughput, wall): {ratio:.2f}x   "
          f"(CPU: {cpu_ratio:.2f}x)   target >= 0.5x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
