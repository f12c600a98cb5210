"""What the metrics adapters cost (issue 16, item 3), as ratios measured in one run.

    uv run python benchmarks/metrics_adapters.py [--events N] [--batch-records N] [--rounds N]

``ingest --source file --sink file`` on N generated events (default 200k) with small batches
(default 500 messages, so many counter increments and timings), without metrics (the baseline)
and with: DogStatsD to a UDP listener in this process, DogStatsD sampled at 0.1, OTLP/HTTP to a
local receiver that answers 200, and the Prometheus endpoint. Rounds interleave the setups; the
best wall and CPU (user+sys) of each is compared with the baseline's. Short runs are dominated
by start-up (importing the OpenTelemetry SDK, more so without cached bytecode), so the cost of
one counter increment is also measured in this process (CPU per ``Metrics.incr``, with and
without each adapter). Not run in CI.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import Measured, run_measured  # noqa: E402
from run import INGEST, events_file  # noqa: E402


class Sinkhole(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-records", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    datagrams = [0]

    def drain() -> None:
        while True:
            try:
                udp.recv(65535)
            except OSError:
                return
            datagrams[0] += 1

    threading.Thread(target=drain, daemon=True).start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Sinkhole)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        prom_port = probe.getsockname()[1]
    statsd = f"127.0.0.1:{udp.getsockname()[1]}"
    setups: dict[str, list[str]] = {
        "no metrics (baseline)": [],
        "dogstatsd": ["--metrics-statsd", statsd],
        "dogstatsd, rate 0.1": ["--metrics-statsd", statsd, "--metrics-sample-rate", "0.1"],
        "otlp/http": ["--metrics-otlp", f"http://127.0.0.1:{http.server_address[1]}"],
        "prometheus": ["--metrics-port", str(prom_port), "--metrics-host", "127.0.0.1"],
    }
    path = events_file(args.events)
    best: dict[str, Measured] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        for _ in range(args.rounds):
            for label, extra in setups.items():
                shutil.rmtree(out, ignore_errors=True)
                m = run_measured([INGEST, "--source", "file", "--source-opt", f"path={path}",
                                  "--sink", "file", "--sink-opt", f"path={out}",
                                  "--sink-opt", "fsync=false", "--encoder", "jsonl",
                                  "--batch-max-records", str(args.batch_records),
                                  "--log-level", "WARNING", *extra]).check()
                if label not in best or m.seconds < best[label].seconds:
                    best[label] = m
    base = best["no metrics (baseline)"]
    batches = -(-args.events // args.batch_records)
    print(f"{args.events} events, {batches} batches, best of {args.rounds} rounds "
          f"(UDP datagrams received: {datagrams[0]})")
    print(f"{'setup':24} {'wall s':>8} {'cpu s':>8} {'wall ratio':>11} {'cpu ratio':>10}")
    for label, m in best.items():
        print(f"{label:24} {m.seconds:8.2f} {m.cpu_seconds:8.2f} "
              f"{m.seconds / base.seconds:11.3f} {m.cpu_seconds / base.cpu_seconds:10.3f}")
    per_increment(statsd, f"http://127.0.0.1:{http.server_address[1]}")
    http.shutdown()
    udp.close()
    return 0


def per_increment(statsd: str, otlp: str, n: int = 100_000) -> None:
    """CPU microseconds per ``Metrics.incr``: alone, and fanned out to each adapter."""
    import time

    from parquet_ingestor.metrics import Metrics
    from parquet_ingestor.otlp import OtlpAdapter
    from parquet_ingestor.statsd import DogStatsd

    def cost(adapter: Any) -> float:
        metrics = Metrics()
        if adapter is not None:
            adapter.start(dict)
            metrics.attach(adapter)
        started = time.process_time()
        for _ in range(n):
            metrics.incr("acked", 5)
        spent = time.process_time() - started
        if adapter is not None:
            adapter.close()
        return spent / n * 1e6

    base = cost(None)
    print(f"\nCPU per counter increment ({n} increments; a batch makes about 10)")
    for label, adapter in (("no adapter (baseline)", None), ("dogstatsd", DogStatsd(statsd)),
                           ("dogstatsd, rate 0.1", DogStatsd(statsd, sample_rate=0.1)),
                           ("otlp/http", OtlpAdapter(otlp))):
        us = base if adapter is None else cost(adapter)
        print(f"{label:24} {us:8.2f} us {us / base:8.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
