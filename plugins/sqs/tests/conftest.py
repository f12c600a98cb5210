"""Helpers for the SQS source tests: queues on the shared moto server, and plain boto3 checks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from parquet_ingestor.message import Message
from parquet_ingestor_sqs.source import SqsSource


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    """A plain boto3 SQS client: the independent view of the queue."""
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def queue_url(sqs: Any, unique_name: str) -> str:
    return str(sqs.create_queue(QueueName=unique_name)["QueueUrl"])


class SerializedReceives:
    """A real client whose ReceiveMessage calls run one at a time.

    moto's ReceiveMessage is not atomic: two concurrent calls can both take the same message,
    which real SQS does not do (in practice). Tests with several pollers use this wrapper so a
    duplicate they see is the source's fault, not moto's.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def receive_message(self, **params: Any) -> Any:
        with self._lock:
            return self._client.receive_message(**params)


@pytest.fixture
def make_source(moto_endpoint: str) -> Iterator[Callable[..., SqsSource]]:
    """Build sources on the moto server (short long polls) and close them after the test."""
    made: list[SqsSource] = []

    def make(queue_url: str, **options: Any) -> SqsSource:
        options.setdefault("endpoint_url", moto_endpoint)
        options.setdefault("region", "us-east-1")
        options.setdefault("wait_time", "1s")
        if "client" not in options:
            real = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
            options["client"] = SerializedReceives(real)
        source = SqsSource(queue_url, **options)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


class QueueTool:
    """Plain-boto3 helpers around the moto server: send, count, peek; and polling helpers."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs

    def send_many(self, queue_url: str, bodies: list[str], **extra: Any) -> None:
        """Send bodies in batches of 10 (extra keys go into every entry)."""
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": body, **extra}
                for i, body in enumerate(bodies[start : start + 10])
            ]
            response = self.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            assert not response.get("Failed"), response

    def counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, not visible) message counts as SQS reports them."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def receive_all(self, queue_url: str, n: int, limit: float = 10.0) -> list[dict[str, Any]]:
        """Receive up to ``n`` messages with a plain client (1 s long polls), without deleting."""
        got: dict[str, dict[str, Any]] = {}
        end = time.monotonic() + limit
        while len(got) < n and time.monotonic() < end:
            response = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                VisibilityTimeout=60,
                MessageSystemAttributeNames=["All"],
            )
            for entry in response.get("Messages", []):
                got[entry["MessageId"]] = entry
        return list(got.values())

    def arn(self, queue_url: str) -> str:
        return str(
            self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        )

    @staticmethod
    def receive_n(source: SqsSource, n: int, limit: float = 20.0) -> list[Message]:
        """Receive from the source until ``n`` messages arrived (fails after ``limit`` s)."""
        got: list[Message] = []
        end = time.monotonic() + limit
        while len(got) < n and time.monotonic() < end:
            got.extend(source.receive(n - len(got), 0.5))
        assert len(got) == n, f"received {len(got)} of {n}"
        return got

    @staticmethod
    def wait_until(check: Callable[[], bool], limit: float = 30.0, what: str = "it") -> None:
        end = time.monotonic() + limit
        while not check():
            assert time.monotonic() < end, f"timed out waiting for {what}"
            time.sleep(0.05)

    @staticmethod
    def redrive_policy(dlq_arn: str, max_receive_count: int) -> str:
        return json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        )


@pytest.fixture
def q(sqs: Any) -> QueueTool:
    return QueueTool(sqs)
