"""Helpers for the S3 sink tests: a real moto server over HTTP, buckets, and fault injection.

Faults are injected with botocore's ``before-send`` event on the sink's own client: the handler
answers one attempt with an S3-style error response instead of sending it, so the sink's real
retry, error and abort paths run against the real server for every other request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from parquet_ingestor_s3.sink import S3Sink


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    """An independent boto3 client to inspect what the sink wrote."""
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any, unique_name: str) -> str:
    s3.create_bucket(Bucket=unique_name)
    return unique_name


@pytest.fixture
def make_sink(moto_endpoint: str) -> Iterator[Callable[..., S3Sink]]:
    """Build sinks against the moto server; every one is closed at the end of the test."""
    sinks: list[S3Sink] = []

    def make(**options: Any) -> S3Sink:
        options.setdefault("endpoint_url", moto_endpoint)
        options.setdefault("max_attempts", 3)
        sink = S3Sink(**options)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


class Store:
    """What is really in one bucket, read with an independent client."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def pending_uploads(self) -> list[dict[str, Any]]:
        return list(self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))

    def object_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.s3.head_object(Bucket=self.bucket, Key=key))


@pytest.fixture
def store(s3: Any, bucket: str) -> Store:
    return Store(s3, bucket)


@pytest.fixture
def op_log() -> type[OperationLog]:
    """``op_log(sink.client)`` starts recording that client's operations."""
    return OperationLog


@pytest.fixture
def inject_fault() -> type[FaultInjector]:
    """``inject_fault(sink.client, "UploadPart", 500, "InternalError", "...")``."""
    return FaultInjector


class OperationLog:
    """Records the name of every S3 operation a client calls (and the headers it sends)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self.headers: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-call.s3", self._on_call)
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append(model.name)

    def _on_send(self, request: Any, **kwargs: Any) -> None:
        name = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        with self._lock:
            self.headers.append((name, {k.lower(): _text(v) for k, v in request.headers.items()}))

    def count(self, name: str) -> int:
        return self.calls.count(name)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FaultInjector:
    """Answers ``operation`` with an S3 error ``times`` times, after letting ``skip`` through."""

    def __init__(self, client: Any, operation: str, status: int, code: str, message: str,
                 *, times: int = 1, skip: int = 0, extra_xml: str = "") -> None:
        self.status = status
        self.body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                     f"<Message>{message}</Message>{extra_xml}"
                     "<RequestId>TESTREQUEST</RequestId></Error>").encode()
        self.remaining = times
        self.skip = skip
        self.attempts = 0
        self.injected = 0
        self._lock = threading.Lock()
        client.meta.events.register(f"before-send.s3.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            self.attempts += 1
            if self.skip > 0:
                self.skip -= 1
                return None
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            self.injected += 1
        headers = {"Content-Type": "application/xml", "x-amz-request-id": "TESTREQUEST"}
        return AWSResponse(request.url, self.status, headers, _Raw(self.body))
