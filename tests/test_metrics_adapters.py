"""Metrics adapters with real parts: a UDP listener receives what a real ``ingest`` run sends in
the DogStatsD format, a local HTTP receiver decodes the OTLP protobuf, a plugin's exporter is
found through its entry point; bad options exit 2 with one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from parquet_ingestor.testing import free_port, wait_for

CLI = "from parquet_ingestor.cli import main; main()"
RunIngest = Callable[..., subprocess.CompletedProcess[str]]


def write_events(path: Path, n: int) -> None:
    path.write_text("".join(json.dumps({"id": i, "note": f"n{i}"}) + "\n" for i in range(n)))


class Udp:
    """A DogStatsD agent stand-in: collects the lines of every datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.lines: list[str] = []

    def drain(self, most: float = 1.0) -> list[str]:
        """Every line that has arrived so far (reading until 0.2 s pass without a datagram,
        or ``most`` seconds)."""
        end = time.monotonic() + most
        while time.monotonic() < end:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                break
            self.lines.extend(data.decode().split("\n"))
        return self.lines

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            lines = self.drain()
            for line in lines[seen:]:
                if predicate(line):
                    return line
            seen = len(lines)
        raise AssertionError(f"no matching line in {timeout}s; got {self.lines[-20:]}")


@pytest.fixture
def udp() -> Iterator[Udp]:
    agent = Udp()
    yield agent
    agent.sock.close()


def parse(line: str) -> tuple[str, float, str, str, str]:
    """``name:value|type|@rate|#tags`` -> (name, value, type, rate, tags)."""
    head, *fields = line.split("|")
    name, _, value = head.rpartition(":")
    rate = next((f[1:] for f in fields[1:] if f.startswith("@")), "")
    tags = next((f[1:] for f in fields[1:] if f.startswith("#")), "")
    return name, float(value), fields[0], rate, tags


def counter_sums(lines: list[str]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for line in lines:
        if line:
            name, value, kind, _, _ = parse(line)
            if kind == "c":
                sums[name] += value
    return sums


def last_gauges(lines: list[str]) -> dict[str, float]:
    return {parse(line)[0]: parse(line)[1] for line in lines if line and parse(line)[2] == "g"}


def file_run(tmp_path: Path, n: int, *extra: str) -> list[str]:
    src = tmp_path / "in.jsonl"
    write_events(src, n)
    return ["--source", "file", "--source-opt", f"path={src}", "--sink", "file",
            "--sink-opt", f"path={tmp_path / 'out'}", "--sink-opt", "fsync=false",
            "--encoder", "jsonl", *extra]


def test_dogstatsd_counters_gauges_timings_prefix_and_tags(
        run_ingest: RunIngest, udp: Udp, tmp_path: Path) -> None:
    result = run_ingest(*file_run(tmp_path, 120, "--batch-max-records", "10",
                                  "--metrics-statsd", udp.address, "--metrics-prefix", "pi.test",
                                  "--metrics-tag", "env:ci", "--metrics-tag", "team:data",
                                  "--metrics-interval", "50ms"))
    assert result.returncode == 0, result.stderr
    lines = [line for line in udp.drain() if line]
    assert lines
    for line in lines:
        name, _, kind, rate, tags = parse(line)
        assert name.startswith("pi.test."), line
        assert tags == "env:ci,team:data", line
        assert kind in ("c", "g", "ms") and rate == "", line
    sums = counter_sums(lines)
    assert sums["pi.test.received"] == 120
    assert sums["pi.test.rows_written"] == 120
    assert sums["pi.test.acked"] == 120
    assert sums["pi.test.batches"] == 12
    assert sums["pi.test.files_written"] == len(list((tmp_path / "out").rglob("*.jsonl")))
    timings = [parse(line) for line in lines if parse(line)[2] == "ms"]
    assert len(timings) == 12 and all(t[0] == "pi.test.flush" and t[1] > 0 for t in timings)
    gauges = last_gauges(lines)  # the last values, sent as the run ended
    assert gauges["pi.test.workers"] == 4
    assert gauges["pi.test.in_flight_messages"] == 0
    assert gauges["pi.test.oldest_unacked_seconds"] == 0
    assert gauges["pi.test.up"] == 1
    assert gauges["pi.test.memory_rss_bytes"] > 10 << 20
    assert {"pi.test.open_files", "pi.test.open_file_bytes"} <= gauges.keys()
    # every datagram fits one frame: lines were packed, not one per packet, nor too many
    assert max(map(len, "\n".join(lines).split("\n"))) < 1432


def test_dogstatsd_sample_rate(run_ingest: RunIngest, udp: Udp, tmp_path: Path) -> None:
    result = run_ingest(*file_run(tmp_path, 400, "--batch-max-records", "2",
                                  "--metrics-statsd", udp.address, "--metrics-sample-rate",
                                  "0.5"))
    assert result.returncode == 0, result.stderr
    lines = [line for line in udp.drain() if line]
    batches = [parse(line) for line in lines if line.startswith("ingest.batches:")]
    flushes = [parse(line) for line in lines if line.startswith("ingest.flush:")]
    gauges = [parse(line) for line in lines if parse(line)[2] == "g"]
    assert all(b[3] == "0.5" for b in batches + flushes)
    assert gauges and all(g[3] == "" for g in gauges)  # gauges are never sampled
    # 200 batches, each sent with probability 1/2: 100 +- 7 (50 and 150 are 7 sigma away)
    assert 50 < sum(b[1] for b in batches) < 150
    assert 50 < len(flushes) < 150


@pytest.mark.timeout(120)
def test_oldest_unacked_gauge_grows_while_a_batch_waits(udp: Udp, tmp_path: Path) -> None:
    # stdin stays open and the batch age is long: the first line waits in the batcher
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "--source", "file", "--source-opt", "path=-", "--sink",
         "file", "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl",
         "--batch-max-age", "1h", "--metrics-statsd", udp.address,
         "--metrics-interval", "50ms"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        cwd=tmp_path)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b'{"id": 1}\n')
        proc.stdin.flush()
        udp.wait_for(lambda line: line.startswith("ingest.oldest_unacked_seconds:")
                     and parse(line)[1] >= 0.5)
        waiting = last_gauges(udp.lines)
        assert waiting["ingest.in_flight_messages"] == 1
        _, err = proc.communicate(timeout=60)  # closes stdin: the run drains
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    udp.drain()
    done = last_gauges(udp.lines)
    assert done["ingest.oldest_unacked_seconds"] == 0
    assert done["ingest.in_flight_messages"] == 0
    assert counter_sums(udp.lines)["ingest.acked"] == 1


class Receiver:
    """An OTLP/HTTP receiver: decodes each ExportMetricsServiceRequest posted to /v1/metrics."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        self.requests: list[Any] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.paths.append(self.path)
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                receiver.requests.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def metrics(self) -> dict[str, Any]:
        """The latest data point of each metric, by name, and the resource attributes."""
        found: dict[str, Any] = {}
        for request in self.requests:
            for resource in request.resource_metrics:
                attrs = {a.key: a.value.string_value for a in resource.resource.attributes}
                found["resource"] = attrs
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        found[metric.name] = (kind, getattr(metric, kind).data_points[-1])
        return found


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    pytest.importorskip("opentelemetry.sdk")
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def test_otlp_receiver_gets_the_runs_counters(run_ingest: RunIngest, receiver: Receiver,
                                              tmp_path: Path) -> None:
    result = run_ingest(*file_run(tmp_path, 90, "--batch-max-records", "30",
                                  "--metrics-otlp", receiver.url, "--metrics-tag", "env:ci",
                                  "--metrics-prefix", "pi"))
    assert result.returncode == 0, result.stderr
    assert set(receiver.paths) == {"/v1/metrics"}  # the path is added to a bare URL
    found = receiver.metrics()
    assert found["resource"]["env"] == "ci"
    assert found["resource"]["service.name"] == "parquet-ingestor"
    for name, total in (("pi.received", 90), ("pi.rows_written", 90), ("pi.acked", 90),
                        ("pi.batches", 3)):
        kind, point = found[name]
        assert kind == "sum" and point.as_int == total, name
    kind, flush = found["pi.flush"]
    assert kind == "histogram" and flush.count == 3 and flush.sum > 0
    kind, workers = found["pi.workers"]
    assert kind == "gauge" and workers.as_int == 4


def test_plugin_exporter_through_its_entry_point(run_ingest: RunIngest,
                                                 make_plugin: Callable[..., Path],
                                                 tmp_path: Path) -> None:
    site = make_plugin(dist="memo-exporter", entry="memo", code='''
        import json
        import logging
        from parquet_ingestor import Option, hookimpl

        class Memo:
            def __init__(self, path, token=None):
                self.path, self.counts, self.timings, self.token = path, {}, 0, token
            def start(self, gauges):
                self.gauges = gauges
                logging.getLogger("memo").warning("memo token %s", self.token)
            def count(self, name, amount):
                self.counts[name] = self.counts.get(name, 0) + amount
            def timing(self, name, seconds):
                self.timings += 1
            def close(self):
                with open(self.path, "w") as f:
                    json.dump({"counts": self.counts, "timings": self.timings,
                               "gauges": dict(self.gauges())}, f)

        @hookimpl
        def ingest_register_metrics_exporters(register):
            register("memo", Memo, options=[Option("path", required=True, help="where"),
                                            Option("token", secret=True)])
    ''')
    listed = run_ingest("plugins", pythonpath=[site])
    assert "metrics exporter memo" in listed.stdout
    out = tmp_path / "memo.json"
    result = run_ingest(*file_run(tmp_path, 50, "--batch-max-records", "25",
                                  "--metrics-exporter", "memo",
                                  "--metrics-exporter-opt", f"memo.path={out}",
                                  "--metrics-exporter-opt", "memo.token=TOKEN7SECRET"),
                        pythonpath=[site])
    assert result.returncode == 0, result.stderr
    assert "memo token ****" in result.stderr and "TOKEN7SECRET" not in result.stderr
    seen = json.loads(out.read_text())
    assert seen["counts"]["received"] == 50 and seen["counts"]["acked"] == 50
    assert seen["timings"] == 2
    assert seen["gauges"]["workers"] == 4

    bad = run_ingest(*file_run(tmp_path, 1, "--metrics-exporter", "memo"), pythonpath=[site])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "metrics exporter 'memo' needs option 'path'" in bad.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--metrics-statsd", "localhost"], "--metrics-statsd: expected HOST:PORT"),
    (["--metrics-statsd", "no-such-host.invalid:8125"], "cannot resolve"),
    (["--metrics-tag", "env"], "--metrics-tag: expected K:V"),
    (["--metrics-prefix", "bad prefix"], "--metrics-prefix"),
    (["--metrics-sample-rate", "0"], "--metrics-sample-rate: 0 is not above 0"),
    (["--metrics-sample-rate", "1.5"], "is above the maximum 1"),
    (["--metrics-otlp", "collector:4318"], "--metrics-otlp: expected an http"),
    (["--metrics-otlp", "http://127.0.0.1:{port}/v1/metrics"], "cannot reach it"),
    (["--metrics-exporter", "nope"], "--metrics-exporter: unknown exporter 'nope'"),
    (["--metrics-exporter-opt", "x=1"], "--metrics-exporter-opt expects NAME.KEY=VALUE"),
])
def test_bad_metrics_options_exit_2_with_one_line(run_ingest: RunIngest, tmp_path: Path,
                                                  args: list[str], says: str) -> None:
    args = [a.format(port=free_port()) for a in args]
    result = run_ingest(*file_run(tmp_path, 3, *args))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.jsonl"))


def test_missing_otlp_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['opentelemetry'] = None; " + CLI  # as if not installed
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    result = subprocess.run([sys.executable, "-c", blocked,
                             *file_run(tmp_path, 3, "--metrics-otlp", "http://127.0.0.1:1")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "pip install 'parquet-ingestor[otlp]'" in result.stderr


def test_statsd_agent_that_is_not_there_is_fine(run_ingest: RunIngest, tmp_path: Path) -> None:
    result = run_ingest(*file_run(tmp_path, 20, "--metrics-statsd",
                                  f"127.0.0.1:{free_port()}", "--metrics-interval", "20ms"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_cli_start_imports_no_metrics_sdk() -> None:
    code = ("import sys; from parquet_ingestor.cli import cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('opentelemetry', 'prometheus_client', 'google')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_env_and_toml_give_the_same_options(run_ingest: RunIngest, udp: Udp,
                                            tmp_path: Path) -> None:
    # one declaration: INGEST_METRICS_TAG (space-separated) and the TOML list are the flag's
    config = tmp_path / "ingest.toml"
    config.write_text(f'[pipeline]\nmetrics_statsd = "{udp.address}"\n'
                      f'metrics_tag = ["from:toml"]\n')
    result = run_ingest(*file_run(tmp_path, 5, "--config", str(config)),
                        env={"INGEST_METRICS_PREFIX": "envp"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in udp.drain() if line]
    assert lines and all(line.startswith("envp.") and line.endswith("|#from:toml")
                         for line in lines)
    result = run_ingest(*file_run(tmp_path, 5, "--metrics-statsd", udp.address),
                        env={"INGEST_METRICS_TAG": "a:1 b:2"})
    assert result.returncode == 0, result.stderr
    assert udp.drain()[-1].endswith("|#a:1,b:2")


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


@pytest.mark.timeout(120)
def test_open_file_gauges_on_prometheus(tmp_path: Path) -> None:
    # rows wait in an open file (--target-file-size, --max-file-age 1h) until stdin closes
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "--source", "file", "--source-opt", "path=-", "--sink",
         "file", "--sink-opt", f"path={tmp_path / 'out'}", "--encoder", "jsonl",
         "--batch-max-age", "100ms", "--target-file-size", "1MiB", "--max-file-age", "1h",
         "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        cwd=tmp_path)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"".join(b'{"id": %d}\n' % i for i in range(50)))
        proc.stdin.flush()
        seen: dict[str, float] = {}

        def file_open_and_unacked() -> bool:
            nonlocal seen
            try:
                seen = scrape(port)
            except OSError:
                seen = {}
            return seen.get("ingest_open_files") == 1 and seen["ingest_oldest_unacked_seconds"] > 1

        wait_for(file_open_and_unacked)
        assert seen.get("ingest_open_files") == 1, seen
        assert seen["ingest_open_file_bytes"] > 0
        assert seen["ingest_in_flight_messages"] == 0  # flushed: waiting in the file, unacked
        assert seen["ingest_acked_total"] == 0
        assert seen["ingest_workers"] == 4
        assert seen["ingest_memory_rss_bytes"] > 10 << 20
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()


def test_gauges_from_their_owners() -> None:
    from types import SimpleNamespace

    from parquet_ingestor.metrics import GAUGES, Metrics, gauge_values

    metrics = Metrics()
    pipeline = SimpleNamespace(metrics=metrics, source=SimpleNamespace(pollers=3),
                               settings=SimpleNamespace(batch=SimpleNamespace(max_age=60)))
    values = gauge_values(pipeline)
    assert values["pollers"] == 3  # a source that has pollers says how many
    assert "memory_limit_bytes" not in values  # no limit set: no gauge
    metrics.set_gauge("workers", 7)  # the runner, whenever it resizes
    metrics.set_gauge("pollers", 5)  # a source may set it instead
    metrics.set_gauge("memory_limit_bytes", 300 << 20)  # --memory-limit
    metrics.hold(1, time.monotonic() - 30)  # a batch received 30 s ago, not settled
    values = gauge_values(pipeline)
    assert (values["workers"], values["pollers"], values["memory_limit_bytes"]) == (
        7, 5, 300 << 20)
    assert 30 <= values["oldest_unacked_seconds"] < 60
    metrics.settle(1)
    assert gauge_values(pipeline)["oldest_unacked_seconds"] == 0
    assert set(values) <= set(GAUGES)


def test_validate_checks_the_otlp_receiver(run_ingest: RunIngest, receiver: Receiver,
                                           tmp_path: Path) -> None:
    ok = run_ingest(*file_run(tmp_path, 3, "--validate", "--metrics-otlp", receiver.url))
    assert ok.returncode == 0, ok.stderr
    down = run_ingest(*file_run(tmp_path, 3, "--validate", "--metrics-otlp",
                                f"http://127.0.0.1:{free_port()}"))
    assert down.returncode == 2 and "cannot reach it" in down.stderr
