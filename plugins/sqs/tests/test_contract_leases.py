"""The core's source suite against SQS on moto, with the lease declared to the suite: a 6 s
visibility timeout, so release at close and nack(0) (within 2 s), acks that stick past the
lease, nack delays and lease extension are all measured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from parquet_ingestor.interfaces import Source
from parquet_ingestor.testing import SourceContract
from parquet_ingestor_sqs.source import SqsSource

pytestmark = pytest.mark.aws


class TestSqsLeasedContract(SourceContract):
    lease_length = 6.0
    release_within = 2.0
    nack_delay = 2.0

    @pytest.fixture(autouse=True)
    def _moto(self, moto_endpoint: str, unique_name: str) -> None:
        self.endpoint = moto_endpoint
        self.name = unique_name
        self.sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")

    def make_source(self, bodies: list[bytes]) -> Callable[[], Source]:
        url = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
        for start in range(0, len(bodies), 10):
            entries: list[dict[str, Any]] = [
                {"Id": str(i), "MessageBody": body.decode()}
                for i, body in enumerate(bodies[start:start + 10])
            ]
            self.sqs.send_message_batch(QueueUrl=url, Entries=entries)

        def open_source() -> Source:
            return SqsSource(url, endpoint_url=self.endpoint, region="us-east-1", wait_time=1,
                             pollers=1, visibility_timeout=f"{self.lease_length:g}s")

        return open_source
