"""Benchmarks that drive the library in-process; run.py starts each in a fresh child process.

    python benchmarks/inproc.py function EVENTS.jsonl [json|message] [WORKERS|auto]
                                # FunctionTransformer -> parquet -> null sink
    python benchmarks/inproc.py sqs N                   # SQS source over a stub client: receive/batch/ack
    python benchmarks/inproc.py workers N DELAY W...    # flush-worker overlap against a slow sink
                                                        # (W: a number or auto)
    python benchmarks/inproc.py imports CMD...          # which heavy modules the CLI imported

Each prints one JSON object on stdout. Throughput is never measured through moto.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from parquet_ingestor.batcher import Batcher, BatchLimits
from parquet_ingestor.interfaces import BaseSink, BaseSource, FunctionTransformer
from parquet_ingestor.message import Message
from parquet_ingestor.pipeline import Pipeline, PipelineSettings


class LineSource(BaseSource):
    """Finite in-memory source over a list of bodies; makes Messages as they are received
    (like a real source). Nacked messages are counted, not redelivered."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.pos = 0
        self.acked = 0
        self.nacked = 0
        self._lock = threading.Lock()

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        start, stop = self.pos, min(len(self.bodies), self.pos + max_messages)
        self.pos = stop
        # built the way the file source builds them (C-level map, no Python loop)
        return list(map(Message, map(str, range(start, stop)), self.bodies[start:stop]))

    def ack(self, messages: Sequence[Message]) -> None:
        with self._lock:
            self.acked += len(messages)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        with self._lock:
            self.nacked += len(messages)

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.bodies)


class NullSink(BaseSink):
    """Counts bytes and throws them away; ``commit_delay`` seconds of sleep per commit model a
    remote store's latency (the sleep releases the GIL, as network I/O does)."""

    def __init__(self, commit_delay: float = 0.0) -> None:
        self.commit_delay = commit_delay
        self.bytes = 0
        self.files = 0
        self._lock = threading.Lock()

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> _NullWriter:
        return _NullWriter(self)

    def url(self, key: str) -> str:
        return f"null://{key}"


class _NullWriter:
    def __init__(self, sink: NullSink) -> None:
        self.sink = sink
        self.n = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = memoryview(data).nbytes
        self.n += n
        return n

    def commit(self) -> None:
        if self.sink.commit_delay:
            time.sleep(self.sink.commit_delay)
        with self.sink._lock:
            self.sink.bytes += self.n
            self.sink.files += 1

    def abort(self) -> None:
        pass


def read_bodies(path: str, limit: int | None = None) -> list[bytes]:
    with open(path, "rb") as handle:
        bodies = [line.rstrip(b"\n") for line in handle]
    return bodies[:limit] if limit else bodies


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_setting(workers: str) -> int | str:
    """``"4"`` -> 4; ``"auto"`` stays (``--workers auto``, default bounds and policy)."""
    return workers if workers == "auto" else int(workers)


def scaling(pipeline: Pipeline) -> dict[str, Any]:
    """What the autoscaler did in a run: its decisions and the workers at the end."""
    counts = pipeline.metrics.counts
    return {"workers_end": pipeline.workers,
            "scaled_up": int(counts.get("workers_scaled_up", 0)),
            "scaled_down": int(counts.get("workers_scaled_down", 0))}


# ------------------------------------------------------------------------------- benchmarks


def bench_function(path: str, decoder: str = "json", workers: str = "1") -> dict[str, Any]:
    """The easy authoring path: one Python function per message, parquet encoder, null sink,
    ``workers`` flush threads (1: one core's worth; the work holds the GIL).

    ``decoder`` is what the function decodes with: ``json`` (``json.loads``, what most people
    write first) or ``message`` (``message.json()``: orjson with the ``fast`` extra)."""
    from parquet_ingestor.jsoncodec import BACKEND
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    bodies = read_bodies(path)
    nbytes = sum(len(b) for b in bodies)
    loads = json.loads

    def parse_stdlib(message: Message) -> dict[str, Any]:
        record: dict[str, Any] = loads(message.body)
        record["amount_cents"] = int(record["amount"] * 100)
        return record

    def parse_message(message: Message) -> dict[str, Any]:
        record: dict[str, Any] = message.json()
        record["amount_cents"] = int(record["amount"] * 100)
        return record

    parse = parse_stdlib if decoder == "json" else parse_message
    transformer = FunctionTransformer(parse)
    encoder = ParquetEncoder()
    # Warm-up outside the timed run: pyarrow imports pandas (when installed) on its first
    # Python-object conversion, a one-off of seconds that is not sustained throughput.
    warm = [Message(str(i), b) for i, b in enumerate(bodies[:1000])]
    encoder.decode(transformer.transform(warm).records)
    # the stages alone, on one 5 MiB batch worth of messages, with the GC paused as in a flush
    sample = [Message(str(i), b) for i, b in enumerate(bodies[:15_000])]
    stages: dict[str, float] = {}
    gc.disable()
    try:
        t0 = time.perf_counter()
        for message in sample:
            loads(message.body) if decoder == "json" else message.json()
        stages["decode_json"] = len(sample) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        records = transformer.transform(sample).records
        stages["transform"] = len(sample) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        encoder.decode(records)
        stages["decode"] = len(sample) / (time.perf_counter() - t0)
    finally:
        gc.enable()

    source, sink = LineSource(bodies), NullSink()
    pipeline = Pipeline(source, sink, encoder, transformer,
                        PipelineSettings(workers=worker_setting(workers)))  # type: ignore[arg-type]
    t0, c0 = time.perf_counter(), cpu_seconds()
    pipeline.run()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    rows = int(pipeline.metrics.snapshot()["rows_written"])
    return {"records": len(bodies), "rows": rows, "acked": source.acked, "seconds": seconds,
            "cpu_seconds": cpu, "bytes": nbytes, "stages": stages,
            "decoder": "json.loads" if decoder == "json" else f"message.json() ({BACKEND})",
            "workers": worker_setting(workers), **scaling(pipeline)}


class StubSqs:
    """Answers like SQS, instantly, from pre-built entries; counts the calls."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.entries = [
            {"MessageId": f"id-{i}", "ReceiptHandle": f"rh-{i}-" + "x" * 64,
             "Body": b.decode(), "MD5OfBody": "",
             "Attributes": {"SentTimestamp": "1714521600000", "ApproximateReceiveCount": "1",
                            "SenderId": "AIDAEXAMPLE",
                            "ApproximateFirstReceiveTimestamp": "1714521600001"},
             "MessageAttributes": {"source": {"StringValue": "bench", "DataType": "String"}}}
            for i, b in enumerate(bodies)]
        self.pos = 0
        self.lock = threading.Lock()
        self.calls = {"receive": 0, "delete": 0, "change": 0}

    def receive_message(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.calls["receive"] += 1
            n = params.get("MaxNumberOfMessages", 10)
            start, self.pos = self.pos, min(len(self.entries), self.pos + n)
            out = self.entries[start:self.pos]
        if not out:
            time.sleep(0.01)  # an empty long poll
        return {"Messages": out}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls["delete"] += 1
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls["change"] += 1
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def bench_sqs(n: int, path: str) -> dict[str, Any]:
    """SqsSource over a stub client: pollers -> receive -> Batcher -> ack, on this thread."""
    from parquet_ingestor_sqs.source import SqsSource

    bodies = read_bodies(path, n)
    while len(bodies) < n:
        bodies += bodies[: n - len(bodies)]
    stub = StubSqs(bodies)
    source = SqsSource("https://sqs.us-east-1.amazonaws.com/123456789012/bench",
                       check_queue=False, client=stub)
    batcher = Batcher(BatchLimits())
    acked = 0
    t0, c0 = time.perf_counter(), cpu_seconds()
    source.start(None)
    while acked < n:
        messages = source.receive(1000, 0.5)
        for batch in batcher.add(messages):
            source.ack(batch)
            acked += len(batch)
        if not messages and len(batcher) and len(batcher) + acked >= n:
            batch = batcher.take()
            source.ack(batch)
            acked += len(batch)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    in_flight = source.in_flight
    source.close()
    return {"messages": n, "acked": acked, "seconds": seconds, "cpu_seconds": cpu,
            "calls": stub.calls, "in_flight_after": in_flight, "stats": source.stats}


def bench_workers(n: int, path: str, delay: float, counts: list[int | str]) -> dict[str, Any]:
    """The same small-batch run against a sink whose commit sleeps ``delay``, per worker count
    (or ``auto``)."""
    from parquet_ingestor_parquet.encoder import ParquetEncoder

    bodies = read_bodies(path, n)
    out: dict[str, Any] = {"messages": n, "delay": delay, "batch_records": 500, "runs": {}}
    for workers in counts:
        source, sink = LineSource(bodies), NullSink(delay)
        settings = PipelineSettings(workers=workers,  # type: ignore[arg-type]
                                    batch=BatchLimits(max_records=500))
        pipeline = Pipeline(source, sink, ParquetEncoder(), None, settings)
        t0, c0 = time.perf_counter(), cpu_seconds()
        pipeline.run()
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        out["runs"][str(workers)] = {"seconds": seconds, "cpu_seconds": cpu, "files": sink.files,
                                     "acked": source.acked, **scaling(pipeline)}
    return out


def bench_imports(argv: list[str]) -> dict[str, Any]:
    """Run the CLI in-process and report which heavy modules got imported."""
    import contextlib
    import io

    from parquet_ingestor.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(argv)
    heavy = ("pyarrow", "boto3", "botocore", "pandas", "fastparquet", "smart_open", "duckdb")
    return {"argv": argv, "imported": sorted(m for m in heavy if m in sys.modules)}


def main(argv: list[str]) -> int:
    kind, args = argv[0], argv[1:]
    if kind == "function":
        result = bench_function(args[0], *args[1:])
    elif kind == "sqs":
        result = bench_sqs(int(args[0]), args[1])
    elif kind == "workers":
        result = bench_workers(int(args[0]), args[1], float(args[2]),
                               [worker_setting(a) for a in args[3:]])
    elif kind == "imports":
        result = bench_imports(args)
    else:
        raise SystemExit(f"unknown benchmark {kind!r}")
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (pollers may sit in a stub long poll)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
