"""Making the boto3 SQS client and checking the queue exists (the only boto3 imports)."""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from parquet_ingestor.errors import ConfigError

from .options import WHERE, SqsSettings

_MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)


#: One retry budget per operation, in exactly one layer (the client itself never retries):
#: ReceiveMessage - the poller keeps polling, backing off 0.5 s doubling to 10 s;
#: ChangeMessageVisibilityBatch (extend) - the lease thread's next round, before the lease lapses;
#: DeleteMessageBatch (ack) - the pipeline's ack policy (--ack-attempts, --ack-base-delay);
#: nack / release - one try (a lease that is not released lapses by itself);
#: GetQueueAttributes at start - START_ATTEMPTS tries.
CLIENT_ATTEMPTS = 1
START_ATTEMPTS = 3


def make_client(settings: SqsSettings) -> Any:
    """A boto3 SQS client sized for the pollers, the lease thread and concurrent acks."""
    config = Config(
        max_pool_connections=settings.most_pollers + 24,  # pollers, lease round, acks
        retries={"mode": "standard", "total_max_attempts": CLIENT_ATTEMPTS},
        connect_timeout=10,
        read_timeout=max(60, settings.wait_time + 30),
    )
    try:
        return boto3.session.Session().client(
            "sqs",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=config,
        )
    except NoRegionError:
        raise ConfigError(
            f"{WHERE} option 'region': no AWS region found (set region= or AWS_REGION)"
        ) from None
    except (BotoCoreError, ValueError) as exc:
        raise ConfigError(f"{WHERE} option 'endpoint_url': {exc}") from None


def queue_attributes(client: Any, settings: SqsSettings) -> dict[str, str]:
    """The queue's attributes; a missing queue or unreachable endpoint is a one-line ConfigError."""
    url = settings.queue_url
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            response = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            break
        except (ClientError, BotoCoreError) as exc:
            if attempt == START_ATTEMPTS or missing_queue(exc) or not _transient(exc):
                _start_error(exc, url)
            time.sleep(0.5 * attempt)
    return dict(response.get("Attributes") or {})


def missing_queue(exc: BaseException) -> bool:
    """The error says the queue does not exist (never created, or deleted)."""
    response = getattr(exc, "response", None)
    code = str((response or {}).get("Error", {}).get("Code", "")) if isinstance(
        response, dict) else ""
    return code in _MISSING_QUEUE_CODES


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return int(status or 0) >= 500 or "Throttl" in code or code == "RequestThrottled"
    return isinstance(exc, EndpointConnectionError | ConnectionError) or "timeout" in str(
        exc).lower()


def _start_error(exc: BaseException, url: str) -> None:
    """Raise the one-line ConfigError for a failed start-up check."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING_QUEUE_CODES:
            raise ConfigError(f"{WHERE} option 'queue_url': queue {url} does not exist") from None
        raise ConfigError(
            f"{WHERE} option 'queue_url': cannot read queue {url}: {code}: {error.get('Message', '')}"
        ) from None
    if isinstance(exc, NoCredentialsError):
        raise ConfigError(f"{WHERE}: no AWS credentials found (see the boto3 credential chain)") from None
    if isinstance(exc, EndpointConnectionError):
        raise ConfigError(f"{WHERE} option 'endpoint_url': cannot connect: {exc}") from None
    raise ConfigError(f"{WHERE} option 'queue_url': cannot read queue {url}: {exc}") from None
