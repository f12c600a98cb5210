"""``pollers=auto``: the source's poller threads resize on request, and the pipeline's autoscaler
adds pollers when batches wait for input. A stub client stands in for SQS with a fixed latency
per ReceiveMessage call (a unit of the thread handling; the moto tests cover the API)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from parquet_ingestor.autoscale import AutoscalePolicy
from parquet_ingestor.batcher import BatchLimits
from parquet_ingestor.builtins.jsonl_encoder import JsonlEncoder
from parquet_ingestor.pipeline import Pipeline, PipelineSettings
from parquet_ingestor.testing import MemorySink, read_rows, wait_for
from parquet_ingestor_sqs.source import SqsSource

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/auto"


class SlowStubSqs:
    """Answers ReceiveMessage after ``latency`` seconds with up to 10 of its messages; each
    message is handed out once (acks and visibility changes are accepted)."""

    def __init__(self, n: int, latency: float) -> None:
        self.latency = latency
        self.entries = [
            {"MessageId": f"id-{i}", "ReceiptHandle": f"rh-{i}", "Body": json.dumps({"n": i}),
             "Attributes": {"SentTimestamp": "1714521600000", "ApproximateReceiveCount": "1"}}
            for i in range(n)]
        self.pos = 0
        self.lock = threading.Lock()
        self.concurrent = 0
        self.most_concurrent = 0
        self.deleted: list[str] = []

    def receive_message(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        time.sleep(self.latency)  # the network round trip
        with self.lock:
            self.concurrent -= 1
            start, self.pos = self.pos, min(len(self.entries), self.pos + params["MaxNumberOfMessages"])
            return {"Messages": self.entries[start:self.pos]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.deleted.extend(e["ReceiptHandle"] for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def pollers_alive() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("sqs-poller-"))


def test_pollers_auto_opts_in_and_resizes_threads() -> None:
    fixed = SqsSource(URL, check_queue=False, client=SlowStubSqs(0, 0.01), pollers=3)
    assert fixed.poller_bounds is None and fixed.pollers == 3
    fifo = SqsSource(URL + ".fifo", check_queue=False, client=SlowStubSqs(0, 0.01),
                     pollers="auto")
    assert fifo.poller_bounds is None and fifo.pollers == 1
    stub = SlowStubSqs(0, 0.01)
    source = SqsSource(URL, check_queue=False, client=stub, pollers="auto", max_pollers=5,
                       wait_time=1)
    assert source.poller_bounds == (1, 5) and source.pollers == 2
    before = pollers_alive()
    source.start(None)
    try:
        assert wait_for(lambda: pollers_alive() == before + 2)
        assert source.resize_pollers(9) == 5  # clamped to max_pollers
        assert wait_for(lambda: pollers_alive() == before + 5)
        assert wait_for(lambda: stub.most_concurrent == 5)
        assert source.resize_pollers(1) == 1
        assert wait_for(lambda: pollers_alive() == before + 1)  # after their current poll
        assert source.resize_pollers(3) == 3
        assert wait_for(lambda: pollers_alive() == before + 3)
    finally:
        source.close()
    assert wait_for(lambda: pollers_alive() == before)


def test_the_autoscaler_adds_pollers_when_batches_wait_for_input() -> None:
    stub = SlowStubSqs(20_000, 0.05)  # 10 messages per 50 ms per poller
    source = SqsSource(URL, check_queue=False, client=stub, pollers="auto", max_pollers=4,
                       wait_time=1)
    sink = MemorySink()
    policy = AutoscalePolicy(interval=0.25, poller_cooldown=0.5, hold=1.0)
    settings = PipelineSettings(workers=2, batch=BatchLimits(max_records=100, max_age=0.5),
                                autoscale=policy)
    pipeline = Pipeline(source, sink, JsonlEncoder(), None, settings)
    thread = threading.Thread(target=pipeline.run, daemon=True)
    thread.start()
    try:
        # 2 to start, then one at a time up to max_pollers
        assert wait_for(lambda: pipeline.metrics.counts["pollers_scaled_up"] >= 2)
        assert wait_for(lambda: pipeline.pollers == 4), pipeline.pollers
    finally:
        pipeline.stop()
        thread.join(60)
    assert not thread.is_alive()
    rows = [row["n"] for key, data in sink.objects.items() for row in read_rows(data, key)]
    assert len(rows) == len(set(rows)) == len(stub.deleted) == len(set(stub.deleted)) > 0
    assert sorted(f"rh-{n}" for n in rows) == sorted(stub.deleted)
