"""The ``s3`` sink: one boto3 client per sink, shared by every flush worker, one upload per file.

boto3 is imported when the client is first needed, never when the plugin is registered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from parquet_ingestor.errors import ConfigError
from parquet_ingestor.options import parse_options

from .errors import describe
from .options import S3_OPTIONS, WHERE, S3Settings, settings_from_options
from .upload import S3Upload

log = logging.getLogger(__name__)

DEFAULT_POOL = 10
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


class S3Sink:
    """Writes each file as one S3 object under ``s3://bucket/prefix/``; atomic on commit.

    Built by the CLI with every declared option (typed, defaults filled in), or from Python with
    just the ones you need: ``S3Sink(bucket="my-bucket", prefix="events/", part_size="16MiB")``.
    """

    def __init__(self, **options: Any) -> None:
        given = {name: value for name, value in options.items() if value is not None}
        self.settings: S3Settings = settings_from_options(**parse_options(S3_OPTIONS, given, WHERE))
        self._pool_size = DEFAULT_POOL
        self._client: Any = None
        self._checked = False
        self._lock = threading.Lock()
        self._active: set[S3Upload] = set()
        self._metrics: Any = None
        self._object_args = _object_args(self.settings)
        self._request_args = _request_args(self.settings)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, context: Any) -> None:
        """Size the connection pool for the flush workers and check the bucket exists."""
        workers = int(getattr(context, "workers", 1) or 1)
        self._metrics = getattr(context, "metrics", None)
        with self._lock:
            pool = max(DEFAULT_POOL, workers * 2 + 2)
            if self._client is not None and pool > self._pool_size and not self._active:
                self._client.close()
                self._client = None
            self._pool_size = max(self._pool_size, pool)
        self._ready()

    @property
    def client(self) -> Any:
        """The sink's boto3 S3 client (thread-safe), created on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def close(self) -> None:
        """Abort uploads never committed nor aborted, then close the client. Idempotent."""
        with self._lock:
            leftovers = list(self._active)
        for upload in leftovers:
            log.warning("closing the s3 sink: aborting unfinished upload of s3://%s/%s",
                        upload.bucket, upload.key)
            upload.abort()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- Sink ---------------------------------------------------------------------------

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> S3Upload:
        """Start the object ``prefix/key``; nothing is visible on S3 until ``commit()``."""
        client = self._ready()
        object_args = dict(self._object_args)
        object_args["ContentType"] = content_type or "application/octet-stream"
        merged = {**self.settings.metadata, **{str(k): str(v) for k, v in metadata.items()}}
        object_args["Metadata"] = {_header_safe(k): _header_safe(v) for k, v in merged.items()}
        upload = S3Upload(
            client,
            self.settings.bucket,
            self.settings.object_key(key),
            part_size=self.settings.part_size,
            multipart_threshold=self.settings.multipart_threshold,
            object_args=object_args,
            request_args=self._request_args,
            checksum=self._checksum_algorithm(client),
            on_done=self._forget,
            on_part=self._on_part,
        )
        with self._lock:
            self._active.add(upload)
        return upload

    def url(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{self.settings.object_key(key)}"

    def __repr__(self) -> str:
        return f"S3Sink({self.url('')})"

    # -- internals ----------------------------------------------------------------------

    def _ready(self) -> Any:
        """The client, after checking the bucket once (when ``check_bucket``)."""
        client = self.client
        if self.settings.check_bucket and not self._checked:
            self._check_bucket(client)
            self._checked = True
        return client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        s = self.settings
        config = Config(
            max_pool_connections=self._pool_size,
            retries={"mode": "standard", "max_attempts": s.max_attempts},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            user_agent_extra="parquet-ingestor",
            **({"s3": {"addressing_style": s.addressing_style}}
               if s.addressing_style != "auto" else {}),
        )
        # endpoint_url=None lets botocore apply AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 itself.
        session = boto3.session.Session()
        return session.client("s3", region_name=s.region, endpoint_url=s.endpoint_url,
                              config=config)

    def _check_bucket(self, client: Any) -> None:
        """HeadBucket: a missing or forbidden bucket is a ConfigError, on one line."""
        bucket = self.settings.bucket
        try:
            client.head_bucket(Bucket=bucket, **self._request_args)
        except Exception as exc:
            code, reason = describe(exc)
            label = f"{WHERE} option 'bucket'"
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise ConfigError(f"{label}: bucket '{bucket}' does not exist") from None
            if code in ("403", "AccessDenied"):
                raise ConfigError(f"{label}: access denied to bucket '{bucket}' (check the "
                                  "credentials, the bucket policy and expected_bucket_owner)"
                                  ) from None
            if code == "NoCredentials":
                raise ConfigError(f"{WHERE}: {reason}") from None
            if code == "EndpointConnectionError":
                raise ConfigError(f"{WHERE}: cannot reach S3: {reason}") from None
            raise ConfigError(f"{label}: cannot check bucket '{bucket}': {reason}") from None

    @staticmethod
    def _checksum_algorithm(client: Any) -> str | None:
        """CRC32 per part when botocore adds checksums by default (as boto3's transfers do)."""
        setting = getattr(client.meta.config, "request_checksum_calculation", None)
        return "CRC32" if setting == "when_supported" else None

    def _forget(self, upload: S3Upload) -> None:
        with self._lock:
            self._active.discard(upload)

    def _on_part(self, nbytes: int) -> None:
        """A part reached S3: tell the pipeline's stall watchdog a slow file is still moving."""
        progress = getattr(self._metrics, "progress", None)
        if progress is not None:
            progress()


def _object_args(s: S3Settings) -> dict[str, Any]:
    """Arguments of PutObject and CreateMultipartUpload common to every object."""
    args: dict[str, Any] = {}
    if s.sse:
        args["ServerSideEncryption"] = s.sse
    if s.kms_key_id:
        args["SSEKMSKeyId"] = s.kms_key_id
    if s.storage_class:
        args["StorageClass"] = s.storage_class
    if s.acl:
        args["ACL"] = s.acl
    if s.tags:
        args["Tagging"] = urlencode(dict(s.tags))
    return args


def _request_args(s: S3Settings) -> dict[str, Any]:
    """Arguments every request about an object carries."""
    return {"ExpectedBucketOwner": s.expected_bucket_owner} if s.expected_bucket_owner else {}


def _header_safe(text: str) -> str:
    """S3 metadata travels in HTTP headers: percent-encode anything but printable ASCII."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))
