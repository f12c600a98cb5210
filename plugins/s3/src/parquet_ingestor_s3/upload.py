"""One S3 object being written: streamed as multipart parts, visible only once committed.

Bytes are buffered until a full part is ready, then sent with UploadPart while the encoder keeps
writing, so about one part per open file sits in memory. A file that ends below the multipart
threshold is sent with a single PutObject instead. Any failure aborts the multipart upload, so
S3 keeps neither a partial object nor an orphaned upload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .errors import S3SinkError, describe

log = logging.getLogger(__name__)

MAX_PARTS = 10_000  # S3's limit per multipart upload

OPEN, COMMITTED, ABORTED, FAILED = "open", "committed", "aborted", "failed"


class S3Upload:
    """A :class:`~parquet_ingestor.interfaces.SinkWriter` for one key; used by one thread.

    ``object_args`` go to PutObject/CreateMultipartUpload (content type, metadata, SSE, ...);
    ``request_args`` go to every request (ExpectedBucketOwner). ``on_done`` tells the sink the
    upload is settled (committed, or aborted with nothing left on S3).
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        part_size: int,
        multipart_threshold: int,
        object_args: Mapping[str, Any],
        request_args: Mapping[str, Any],
        checksum: str | None = None,
        on_done: Callable[[S3Upload], None] | None = None,
        on_part: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self.object_args = dict(object_args)
        self.request_args = dict(request_args)
        self.checksum = checksum  # e.g. "CRC32": per-part checksums, as boto3's transfers do
        self.on_done = on_done
        self.on_part = on_part
        self.upload_id: str | None = None
        self.state = OPEN
        self.size = 0
        self._parts: list[dict[str, Any]] = []
        self._buffer = bytearray()
        self._operation = "PutObject"  # the request in progress, for error messages
        # Before the upload starts, buffer up to this much (the threshold may exceed a part).
        self._first_flush = max(part_size, multipart_threshold)

    # -- SinkWriter ----------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; send every full part as soon as it is complete."""
        self._check_open("write")
        view = memoryview(data).cast("B")
        written = len(view)
        self.size += written
        try:
            while view:
                limit = self.part_size if self.upload_id is not None else self._first_flush
                room = limit - len(self._buffer)
                self._buffer += view[:room]
                view = view[room:]
                if len(self._buffer) >= limit:
                    if self.upload_id is None:
                        self._create()
                    self._send_full_parts()
        except Exception as exc:
            raise self._fail(exc) from exc
        return written

    def commit(self) -> None:
        """Make the object visible: CompleteMultipartUpload, or one PutObject if small."""
        if self.state == COMMITTED:
            return
        self._check_open("commit")
        try:
            if self.upload_id is None and (self.size == 0 or self.size < self.multipart_threshold):
                self._operation = "PutObject"
                self.client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=self._buffer,
                    **self.object_args, **self.request_args,
                )
            else:
                if self.upload_id is None:
                    self._create()
                self._send_full_parts()
                if self._buffer or not self._parts:
                    self._send_part(self._buffer)
                    self._buffer = bytearray()
                self._complete()
        except Exception as exc:
            raise self._fail(exc) from exc
        self.state = COMMITTED
        self._buffer = bytearray()
        self._done()

    def abort(self) -> None:
        """Drop everything written so far. Safe to call again, and after a failed commit."""
        if self.state == COMMITTED:
            log.debug("abort() after commit of s3://%s/%s: nothing to do", self.bucket, self.key)
            return
        if self.state == OPEN:
            self.state = ABORTED
        self._buffer = bytearray()
        self._abort_upload()

    # -- stream conveniences (the encoder may probe these) --------------------------------

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        """Nothing to do: parts are sent when full, the rest on commit."""

    def writable(self) -> bool:
        return self.state == OPEN

    @property
    def closed(self) -> bool:
        return self.state != OPEN

    def __repr__(self) -> str:
        return f"S3Upload(s3://{self.bucket}/{self.key}, {self.state}, {self.size} bytes)"

    # -- S3 requests --------------------------------------------------------------------

    def _create(self) -> None:
        self._operation = "CreateMultipartUpload"
        extra = {"ChecksumAlgorithm": self.checksum} if self.checksum else {}
        response = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.key, **self.object_args, **self.request_args, **extra
        )
        self.upload_id = response["UploadId"]

    def _send_full_parts(self) -> None:
        if len(self._buffer) == self.part_size:  # the common case: hand the buffer over, no copy
            part, self._buffer = self._buffer, bytearray()
            self._send_part(part)
            return
        while len(self._buffer) >= self.part_size:
            part = self._buffer[: self.part_size]
            del self._buffer[: self.part_size]
            self._send_part(part)

    def _send_part(self, body: bytearray) -> None:
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"more than {MAX_PARTS} parts: raise option 'part_size'")
        self._operation = f"UploadPart {number}"
        extra = {"ChecksumAlgorithm": self.checksum} if self.checksum else {}
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
            Body=body, **self.request_args, **extra,
        )
        part: dict[str, Any] = {"PartNumber": number, "ETag": response["ETag"]}
        member = f"Checksum{self.checksum}" if self.checksum else None
        if member and response.get(member):
            part[member] = response[member]
        self._parts.append(part)
        if self.on_part is not None:
            self.on_part(len(body))

    def _complete(self) -> None:
        self._operation = "CompleteMultipartUpload"
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
            MultipartUpload={"Parts": self._parts}, **self.request_args,
        )
        self.upload_id = None

    def _abort_upload(self) -> None:
        """AbortMultipartUpload if one is pending; on failure keep the id so a later call retries."""
        if self.upload_id is None:
            self._done()
            return
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, **self.request_args
            )
        except Exception as exc:  # noqa: BLE001 - aborting is best effort, reported below
            code, reason = describe(exc)
            if code != "NoSuchUpload":
                log.warning("could not abort the multipart upload of s3://%s/%s (upload id %s): "
                            "%s; the sink retries on close, or set a bucket lifecycle rule to "
                            "abort incomplete uploads", self.bucket, self.key, self.upload_id,
                            reason)
                return
        self.upload_id = None
        self._parts = []
        self._done()

    def _fail(self, exc: Exception) -> S3SinkError:
        """Abort what was started and return the error to raise (naming bucket, key, cause)."""
        operation = self._operation
        self.state = FAILED
        self._buffer = bytearray()
        self._abort_upload()
        if isinstance(exc, S3SinkError):
            return exc
        code, reason = describe(exc)
        return S3SinkError(self.bucket, self.key, operation, code, reason)

    def _check_open(self, what: str) -> None:
        if self.state != OPEN:
            raise ValueError(f"cannot {what} s3://{self.bucket}/{self.key}: upload is {self.state}")

    def _done(self) -> None:
        if self.on_done is not None:
            self.on_done(self)
