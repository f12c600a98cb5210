"""Micro benchmark: messages per second through the SQS source's own bookkeeping.

A stub client answers every call at once, so this measures what the source costs per message
(conversion, leases, the internal queue, DeleteMessageBatch entries), not SQS. Run::

    uv run python plugins/sqs/benchmarks/stub_throughput.py [messages] [pollers]
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from parquet_ingestor_sqs.source import SqsSource


class StubSqsClient:
    """Answers ReceiveMessage with full batches and every batch call with success, instantly."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self.deleted = 0

    def receive_message(self, **params: Any) -> dict[str, Any]:
        n = params.get("MaxNumberOfMessages", 10)
        messages = []
        for _ in range(n):
            i = next(self._ids)
            messages.append(
                {
                    "MessageId": f"id-{i}",
                    "ReceiptHandle": f"rh-{i}",
                    "Body": '{"user": "ada", "n": 1}',
                    "Attributes": {
                        "SentTimestamp": "1700000000000",
                        "ApproximateReceiveCount": "1",
                        "SenderId": "AIDAEXAMPLE",
                    },
                    "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "a"}},
                }
            )
        return {"Messages": messages}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.deleted += len(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def run(total: int, pollers: int) -> float:
    """Receive and ack ``total`` messages; returns messages per second."""
    client = StubSqsClient()
    source = SqsSource(
        "https://sqs.us-east-1.amazonaws.com/123456789012/bench",
        pollers=pollers,
        check_queue=False,
        client=client,
    )
    done = 0
    started = time.perf_counter()
    while done < total:
        batch = source.receive(1000, 1.0)
        source.ack(batch)
        done += len(batch)
    elapsed = time.perf_counter() - started
    source.close()
    assert client.deleted >= total
    return done / elapsed


if __name__ == "__main__":
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    pollers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rate = run(total, pollers)
    print(f"{total} messages, {pollers} poller(s): {rate:,.0f} msg/s through receive + ack")
