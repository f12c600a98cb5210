"""The S3 sink's options, declared once, and the validated settings built from them.

This module is imported by ``plugin.py`` at CLI start, so it must stay light: no boto3 here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from parquet_ingestor.errors import ConfigError
from parquet_ingestor.options import Option

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * MIB  # S3's maximum part size
DEFAULT_PART_SIZE = 8 * MIB
WHERE = "sink 's3'"
_TAG_TEXT = re.compile(r"^[\w\s+\-=.:/@]*$")

ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)

S3_OPTIONS: tuple[Option, ...] = (
    Option("bucket", required=True, help="bucket to write to"),
    Option("prefix", help="key prefix, e.g. events/ (a trailing slash is optional)"),
    Option("region", help="AWS region (default: the standard AWS chain, e.g. AWS_REGION)"),
    Option(
        "endpoint_url",
        help="S3-compatible endpoint, e.g. http://localhost:9000 (AWS_ENDPOINT_URL works too)",
    ),
    Option(
        "addressing_style",
        default="auto",
        choices=("auto", "path", "virtual"),
        help="bucket addressing; 'path' for MinIO and most S3-compatible stores",
    ),
    Option(
        "part_size",
        "size",
        default="8MiB",
        min=MIN_PART_SIZE,
        max=MAX_PART_SIZE,
        help="multipart part size; one part is buffered in memory per file being written",
    ),
    Option(
        "multipart_threshold",
        "size",
        help="files smaller than this use one PutObject (default: part_size)",
    ),
    Option(
        "sse",
        choices=("AES256", "aws:kms", "aws:kms:dsse"),
        help="server-side encryption",
    ),
    Option("kms_key_id", help="KMS key id or ARN for sse=aws:kms (implies sse=aws:kms)"),
    Option(
        "storage_class",
        help="STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, ... (default: bucket's)",
    ),
    Option("acl", choices=ACLS, help="canned ACL for every object"),
    Option("expected_bucket_owner", help="account id the bucket must belong to"),
    Option("tags", "map", help="object tags, key=value,key2=value2"),
    Option("metadata", "map", help="extra object metadata (x-amz-meta-*), key=value,key2=value2"),
    Option("check_bucket", "bool", default=True, help="check the bucket exists at start"),
    Option("max_attempts", "int", default=5, min=1, max=20,
           help="attempts per S3 request (botocore standard retries)"),
)


@dataclass(frozen=True)
class S3Settings:
    """Validated, typed S3 sink settings; built by :func:`settings_from_options`."""

    bucket: str
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    addressing_style: str = "auto"
    part_size: int = DEFAULT_PART_SIZE
    multipart_threshold: int = DEFAULT_PART_SIZE
    sse: str | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None
    acl: str | None = None
    expected_bucket_owner: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    check_bucket: bool = True
    max_attempts: int = 5

    def object_key(self, key: str) -> str:
        """``prefix`` joined to ``key`` with exactly one slash and no leading slash."""
        return join_key(self.prefix, key)


def join_key(prefix: str, key: str) -> str:
    """Join a prefix and a key: ``('events/', '/a/b')`` -> ``'events/a/b'``, never ``//``."""
    parts = [p for p in (prefix.strip("/"), key.lstrip("/")) if p]
    joined = "/".join(parts)
    while "//" in joined:
        joined = joined.replace("//", "/")
    return joined


def settings_from_options(**options: Any) -> S3Settings:
    """Check the combinations one option alone cannot; raise a one-line ConfigError."""
    bucket = (options.get("bucket") or "").strip()
    if not bucket or "/" in bucket:
        raise ConfigError(f"{WHERE} option 'bucket': expected a bucket name, got {bucket!r} "
                          "(put the path in option 'prefix')")
    part_size = int(options.get("part_size") or DEFAULT_PART_SIZE)
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ConfigError(f"{WHERE} option 'part_size': must be between 5MiB and 5GiB")
    threshold = options.get("multipart_threshold")
    threshold = part_size if threshold is None else int(threshold)
    sse = options.get("sse") or None
    kms_key_id = options.get("kms_key_id") or None
    if kms_key_id and sse is None:
        sse = "aws:kms"
    if kms_key_id and sse is not None and not sse.startswith("aws:kms"):
        raise ConfigError(f"{WHERE} option 'kms_key_id': needs sse=aws:kms, not sse={sse}")
    endpoint_url = options.get("endpoint_url") or None
    if endpoint_url and not endpoint_url.startswith(("http://", "https://")):
        raise ConfigError(f"{WHERE} option 'endpoint_url': expected http(s)://host[:port], "
                          f"got {endpoint_url!r}")
    metadata = dict(options.get("metadata") or {})
    tags = dict(options.get("tags") or {})
    _check_ascii("metadata", metadata)
    if len(tags) > 10:
        raise ConfigError(f"{WHERE} option 'tags': S3 allows at most 10 tags, got {len(tags)}")
    for key, value in tags.items():
        if not (_TAG_TEXT.match(key) and _TAG_TEXT.match(value)) or not key \
                or len(key) > 128 or len(value) > 256:
            raise ConfigError(f"{WHERE} option 'tags': {key}={value} is not a valid S3 tag "
                              "(letters, digits, spaces and + - = . _ : / @; key up to 128, "
                              "value up to 256 characters)")
    return S3Settings(
        bucket=bucket,
        prefix=join_key(options.get("prefix") or "", ""),
        region=options.get("region") or None,
        endpoint_url=endpoint_url,
        addressing_style=options.get("addressing_style") or "auto",
        part_size=part_size,
        multipart_threshold=threshold,
        sse=sse,
        kms_key_id=kms_key_id,
        storage_class=options.get("storage_class") or None,
        acl=options.get("acl") or None,
        expected_bucket_owner=options.get("expected_bucket_owner") or None,
        tags=tags,
        metadata=metadata,
        check_bucket=True if options.get("check_bucket") is None else bool(options["check_bucket"]),
        max_attempts=int(options.get("max_attempts") or 5),
    )


def _check_ascii(name: str, values: Mapping[str, str]) -> None:
    """S3 metadata travels in HTTP headers: printable ASCII only."""
    for key, value in values.items():
        for text in (key, value):
            if not text.isascii() or not text.isprintable():
                raise ConfigError(f"{WHERE} option '{name}': {key!r} must be printable ASCII "
                                  "(S3 metadata is sent as HTTP headers)")
