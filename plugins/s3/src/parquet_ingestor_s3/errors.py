"""Turning botocore failures into one-line errors that name the bucket, the key and the cause.

Messages are built only from the S3 error code, S3's own message and the HTTP status: never
from the request, so no credential or signature can leak into logs.
"""

from __future__ import annotations

from parquet_ingestor.errors import IngestError

# S3 error codes people meet, in words; anything else is shown as its code.
_REASONS = {
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access denied",
    "InvalidAccessKeyId": "the access key is not valid",
    "SignatureDoesNotMatch": "the request signature does not match (check the secret key)",
    "ExpiredToken": "the credentials have expired",
    "InvalidToken": "the session token is not valid",
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchUpload": "the multipart upload no longer exists",
    "SlowDown": "throttled by S3",
    "Throttling": "throttled by S3",
    "ThrottlingException": "throttled by S3",
    "RequestLimitExceeded": "throttled by S3",
    "ServiceUnavailable": "S3 is unavailable",
    "InternalError": "S3 internal error",
    "KMS.NotFoundException": "the KMS key was not found",
    "KMS.DisabledException": "the KMS key is disabled",
    "InvalidStorageClass": "the storage class is not valid",
    "EntityTooSmall": "a part is smaller than S3's 5 MiB minimum",
    "EntityTooLarge": "the object is larger than S3 allows",
    "InvalidTag": "a tag is not valid",
    "MetadataTooLarge": "the object metadata is larger than 2 KB",
}
_HTTP_REASONS = {403: "access denied", 404: "not found", 500: "S3 internal error",
                 503: "S3 is unavailable"}


class S3SinkError(IngestError):
    """An S3 request for one object failed (after botocore's own retries)."""

    def __init__(self, bucket: str, key: str, operation: str, code: str, reason: str) -> None:
        self.bucket = bucket
        self.key = key
        self.operation = operation
        self.code = code
        self.reason = reason
        super().__init__(f"s3://{bucket}/{key}: {operation} failed: {reason}")


def describe(exc: BaseException) -> tuple[str, str]:
    """``(code, one-line reason)`` for a botocore/boto3 exception (or any other)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        code = str(error.get("Code") or status or "Unknown")
        words = _REASONS.get(code) or _HTTP_REASONS.get(status or 0) or "S3 error"
        message = _one_line(str(error.get("Message") or ""))
        details = f"{code}, HTTP {status}" if status else code
        if message and message.lower().rstrip(".") != words.lower():
            details = f"{details}: {message}"
        return code, f"{words} ({details})"
    if isinstance(exc, NoCredentialsError):
        return "NoCredentials", "no AWS credentials found (configure the standard AWS chain)"
    if isinstance(exc, EndpointConnectionError):
        return "EndpointConnectionError", _one_line(str(exc))
    if isinstance(exc, BotoCoreError):
        return type(exc).__name__, _one_line(str(exc))
    return type(exc).__name__, _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]
