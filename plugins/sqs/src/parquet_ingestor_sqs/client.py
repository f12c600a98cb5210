"""Making the boto3 SQS client and checking the queue exists (the only boto3 imports)."""

from __future__ import annotations

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


def make_client(settings: SqsSettings) -> Any:
    """A boto3 SQS client sized for the pollers, the lease thread and concurrent acks."""
    config = Config(
        max_pool_connections=settings.pollers + 24,  # pollers, lease round, acks
        retries={"mode": "standard", "max_attempts": 5},
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
    try:
        response = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING_QUEUE_CODES:
            raise ConfigError(f"{WHERE} option 'queue_url': queue {url} does not exist") from None
        raise ConfigError(
            f"{WHERE} option 'queue_url': cannot read queue {url}: {code}: {error.get('Message', '')}"
        ) from None
    except NoCredentialsError:
        raise ConfigError(f"{WHERE}: no AWS credentials found (see the boto3 credential chain)") from None
    except EndpointConnectionError as exc:
        raise ConfigError(f"{WHERE} option 'endpoint_url': cannot connect: {exc}") from None
    except BotoCoreError as exc:
        raise ConfigError(f"{WHERE} option 'queue_url': cannot read queue {url}: {exc}") from None
    return dict(response.get("Attributes") or {})
