"""Files behind URLs (``s3://``, ``gs://``, ``azure://``, ``hdfs://``, ``sftp://``, ``http(s)://``),
read and written through smart-open, which is imported only when a URL is used.

* :class:`UrlStore` - one scheme's client, shared by the reads and writes of a source or sink.
* :meth:`UrlStore.expand` - a URL, a prefix (``.../``) or a glob (``*``, ``?``, ``[...]``,
  ``**``) listed on the object store, as a sorted list of object URLs.
* :class:`RetryingReader` - a read that fails midway (connection reset, throttling) reopens the
  object and skips what was already read, up to a retry budget; corrupt compressed data is not
  retried (:class:`ReadFailed` names the file and the offset).
* :class:`UrlWriter` - open-write-commit/abort on object stores whose uploads are invisible
  until completed (s3 multipart, gs resumable, azure block blobs): abort leaves nothing.

Compression is chosen by extension (``.gz``, ``.bz2``, ``.zst``, ``.xz``) when reading.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import lzma
import queue
import re
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import IO, Any

from .errors import ConfigError, IngestError
from .retry import RetryPolicy

#: scheme -> (module the scheme needs, the pip extra that installs it)
SCHEMES: dict[str, tuple[str, str]] = {
    "s3": ("boto3", "parquet-ingestor[urls]"),
    "gs": ("google.cloud.storage", "smart-open[gcs]"),
    "azure": ("azure.storage.blob", "smart-open[azure]"),
    "hdfs": ("smart_open", "parquet-ingestor[urls]"),  # runs the `hdfs` command
    "webhdfs": ("requests", "smart-open[webhdfs]"),
    "sftp": ("paramiko", "smart-open[ssh]"),
    "http": ("requests", "parquet-ingestor[urls]"),
    "https": ("requests", "parquet-ingestor[urls]"),
}
#: schemes whose uploads stay invisible until committed and can be abandoned (the file sink)
ATOMIC_SCHEMES = ("s3", "gs", "azure")
#: schemes a glob or a prefix can be listed on
LISTABLE_SCHEMES = ("s3", "gs", "azure")
#: object names a prefix (``s3://bucket/dir/``) stands for
SUFFIXES = tuple(f".{kind}{z}" for kind in ("jsonl", "ndjson", "json")
                 for z in ("", ".gz", ".bz2", ".zst", ".xz"))
_URL = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)", re.DOTALL)
_GLOB = re.compile(r"[*?\[]")
#: errors of the data itself: reading again gives the same error, so they are not retried
_CORRUPT: tuple[type[BaseException], ...] = (EOFError, zlib.error, lzma.LZMAError,
                                             gzip.BadGzipFile, UnicodeDecodeError)
READ_RETRY = RetryPolicy(attempts=5, base_delay=0.2, max_delay=5.0)


class ReadFailed(IngestError):
    """A file could not be read to its end (after retries, or its data is corrupt)."""


def is_url(path: str) -> bool:
    """``scheme://...`` other than ``file://``."""
    match = _URL.match(path)
    return bool(match) and match.group(1).lower() != "file"  # type: ignore[union-attr]


def local_path(path: str) -> str:
    """``file:///x`` -> ``/x``; anything else unchanged."""
    return path[7:] if path.lower().startswith("file://") else path


def scheme_of(url: str, where: str) -> str:
    """The URL's scheme, after checking it is known and its dependencies are installed
    (ConfigError naming the pip extra otherwise)."""
    match = _URL.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme not in SCHEMES:
        raise ConfigError(f"{where}: unknown URL scheme {scheme!r} in {url!r} (known: "
                          f"{', '.join(SCHEMES)}, or a local path)")
    module, extra = SCHEMES[scheme]
    for name, pip in (("smart_open", "parquet-ingestor[urls]"), (module, extra)):
        if not _installed(name):
            raise ConfigError(f"{where}: {scheme}:// URLs need {name.replace('_', '-')}, which is "
                              f"not installed: pip install '{pip}'") from None
    return scheme


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (found, not imported: that waits for first use)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError, AttributeError):  # a missing parent; a blocked module
        return False


def _split(url: str) -> tuple[str, str, str]:
    """``s3://bucket/key`` -> (``s3``, ``bucket``, ``key``)."""
    scheme, rest = url.split("://", 1)
    bucket, _, key = rest.partition("/")
    return scheme.lower(), bucket, key


def glob_pattern(pattern: str) -> re.Pattern[str]:
    """A glob as a regex over object keys: ``*`` and ``?`` stay within one ``/`` level,
    ``**`` crosses levels, ``[...]`` is a character class."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and "]" in pattern[i + 2:] or pattern[i + 1:i + 2] == "]":
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out))


class UrlStore:
    """One scheme's client and the transport parameters smart-open takes, made once (boto3
    reads ``AWS_ENDPOINT_URL`` and credentials the usual way). Thread-safe as its clients are."""

    def __init__(self, url: str, where: str) -> None:
        self.where = where
        self.scheme = scheme_of(url, where)
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            if self.scheme == "s3":
                import boto3

                self._client = boto3.client("s3")
            elif self.scheme == "gs":
                from google.cloud import storage  # type: ignore[import-not-found,import-untyped,unused-ignore]

                self._client = storage.Client()
            elif self.scheme == "azure":
                import os

                from azure.storage.blob import (  # type: ignore[import-not-found]
                    BlobServiceClient,
                )

                conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
                if not conn:
                    raise ConfigError(f"{self.where}: azure:// URLs need "
                                      "AZURE_STORAGE_CONNECTION_STRING in the environment")
                self._client = BlobServiceClient.from_connection_string(conn)
        return self._client

    def check_writable(self, url: str) -> None:
        """ConfigError when the bucket is missing or cannot be reached (s3; others at the
        first write)."""
        scheme, bucket, _ = _split(url)
        if scheme == "s3":
            try:
                self.client().head_bucket(Bucket=bucket)
            except Exception as exc:  # noqa: BLE001 - one line
                raise ConfigError(f"{self.where}: cannot write to {url!r}: {exc}") from None
        else:
            self.client()

    def transport_params(self) -> dict[str, Any]:
        client = self.client()
        return {"client": client} if client is not None else {}

    def expand(self, url: str) -> list[str]:
        """Object URLs for a URL, a prefix ending in ``/`` or a glob (sorted); ConfigError when
        a glob or prefix matches nothing, or the store cannot be listed."""
        scheme, bucket, key = _split(url)
        glob = _GLOB.search(key)
        if not glob and not key.endswith("/") and key:
            if scheme == "s3":  # one request tells a missing object from a slow one
                try:
                    self.client().head_object(Bucket=bucket, Key=key)
                except Exception as exc:  # noqa: BLE001 - missing, or no access: one line
                    raise ConfigError(f"{self.where}: cannot read {url!r}: {exc}") from None
            return [url]
        if scheme not in LISTABLE_SCHEMES:
            raise ConfigError(f"{self.where}: {url!r}: globs and prefixes need a store that "
                              f"can be listed ({', '.join(LISTABLE_SCHEMES)}); name the files")
        prefix = key[:glob.start()] if glob else key
        if glob:
            match: Callable[[str], bool] = glob_pattern(key).fullmatch  # type: ignore[assignment]
        else:
            def match(name: str) -> bool:
                return name.endswith(SUFFIXES)
        try:
            found = sorted(k for k in self._list(bucket, prefix) if match(k))
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - no such bucket, no access: one line
            raise ConfigError(f"{self.where}: cannot list {url!r}: {exc}") from None
        if not found:
            raise ConfigError(f"{self.where}: no files match {url!r}")
        return [f"{scheme}://{bucket}/{k}" for k in found]

    def _list(self, bucket: str, prefix: str) -> list[str]:
        client = self.client()
        if self.scheme == "s3":
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                     Prefix=prefix)
            return [o["Key"] for page in pages for o in page.get("Contents", ())
                    if not o["Key"].endswith("/")]
        if self.scheme == "gs":
            return [b.name for b in client.list_blobs(bucket, prefix=prefix)]
        container = client.get_container_client(bucket)  # azure
        return [b.name for b in container.list_blobs(name_starts_with=prefix)]

    def open_read(self, url: str) -> IO[bytes]:
        """The object's bytes, decompressed by extension."""
        import smart_open  # type: ignore[import-untyped]

        handle: IO[bytes] = smart_open.open(url, "rb", compression="infer_from_extension",
                                            transport_params=self.transport_params())
        return handle

    def reader(self, url: str, policy: RetryPolicy = READ_RETRY) -> RetryingReader:
        return RetryingReader(url, self.open_read, policy)

    def exists(self, url: str) -> bool:
        """Whether an object is there (a replay marker, say); False when unsure."""
        try:
            with self.open_read(url) as handle:
                handle.read(1)
        except Exception:  # noqa: BLE001 - missing, or unreadable: treated as absent
            return False
        return True

    def write_small(self, url: str, data: bytes) -> None:
        """Write a small object in one go (markers)."""
        writer = self.writer(url, {})
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def writer(self, url: str, metadata: Mapping[str, str], content_type: str = "") -> UrlWriter:
        import smart_open

        params = self.transport_params()
        if self.scheme == "s3":
            extra: dict[str, str | dict[str, str]] = {"Metadata": dict(metadata)}
            if content_type:
                extra["ContentType"] = content_type
            params["client_kwargs"] = {"S3.Client.create_multipart_upload": extra,
                                       "S3.Client.put_object": extra}
        handle = smart_open.open(url, "wb", compression="disable", transport_params=params)
        return UrlWriter(handle)


class UrlWriter:
    """One object being written: visible only after :meth:`commit`; :meth:`abort` terminates the
    upload (s3 multipart, gs resumable session, azure uncommitted blocks), leaving nothing."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.handle.write(data)
        return len(data)

    def commit(self) -> None:
        self.handle.close()

    def abort(self) -> None:
        terminate = getattr(self.handle, "terminate", None)
        if terminate is not None:
            terminate()


class RetryingReader:
    """``read``/``readline``/``close`` over an object that is reopened after a failed read and
    positioned where the last successful read ended (by reading past what was read: compressed
    streams cannot seek). ``offset`` is the decompressed bytes read so far.

    A background thread reads (and decompresses) ahead, at most ``read_ahead`` chunks of
    ``chunk`` bytes, so the network waits overlap the pipeline's work; its errors are raised by
    the ``read`` that reaches them. Not thread-safe: one consumer (the source's receive thread).
    """

    def __init__(self, url: str, opener: Callable[[str], IO[bytes]], policy: RetryPolicy,
                 chunk: int = 1 << 18, read_ahead: int = 16) -> None:
        self.url = url
        self.offset = 0
        self._opener = opener
        self._policy = policy
        self._chunk = chunk
        self._handle: IO[bytes] | None = None  # the reader thread's only
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(read_ahead)
        self._stop = threading.Event()
        self._buffer = bytearray()
        self._ended = False
        self._thread = threading.Thread(target=self._pump, name="url-read-ahead", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._call(lambda handle: handle.read(self._chunk))
                self._put(data)
                if not data:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)
        finally:
            self._drop()

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _more(self) -> bool:
        """Append the next chunk to the buffer; False at the end."""
        if self._ended:
            return False
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        if not item:
            self._ended = True
            return False
        self._buffer += item
        return True

    def _reopen(self) -> IO[bytes]:
        self._drop()
        handle = self._opener(self.url)
        left = self.offset
        while left > 0:  # skip what was delivered before the failure
            skipped = handle.read(min(left, 1 << 20))
            if not skipped:
                raise ReadFailed(f"{self.url}: shorter than before ({self.offset - left} bytes) "
                                 "when reopened")
            left -= len(skipped)
        self._handle = handle
        return handle

    def _call(self, fn: Callable[[IO[bytes]], bytes]) -> bytes:
        def attempt() -> bytes:
            handle = self._handle if self._handle is not None else self._reopen()
            try:
                return fn(handle)
            except ReadFailed:
                raise
            except Exception as exc:
                if isinstance(exc, _CORRUPT) or isinstance(exc, OSError) and \
                        _corrupt_oserror(exc):
                    raise _Corrupt(exc) from None  # not retried: the data is bad
                self._drop()
                raise

        try:
            data = self._policy.call(attempt, what=f"reading {self.url}")
        except _Corrupt as corrupt:
            exc = corrupt.args[0]
            raise ReadFailed(f"{self.url}: corrupt data after byte {self.offset} of the "
                             f"decompressed stream: {exc}") from None
        except ReadFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - retries used up
            raise ReadFailed(f"{self.url}: read failed after {self._policy.attempts} attempts "
                             f"at byte {self.offset}: {type(exc).__name__}: {exc}") from None
        self.offset += len(data)
        return data

    def _drop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                handle.close()

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buffer) < size) and self._more():
            pass
        return self._take(len(self._buffer) if size < 0 else min(size, len(self._buffer)))

    def readline(self) -> bytes:
        start = 0
        while (end := self._buffer.find(b"\n", start)) < 0:
            start = len(self._buffer)
            if not self._more():
                return self._take(len(self._buffer))
        return self._take(end + 1)

    def _take(self, size: int) -> bytes:
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def close(self) -> None:
        """Stop the reader thread (it closes the object after its current read)."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


class _Corrupt(BaseException):  # noqa: N818 - a BaseException so no retry policy catches it
    """Carries a corrupt-data error through :meth:`RetryPolicy.call` without a retry."""


def _corrupt_oserror(exc: OSError) -> bool:
    """bz2 and zstandard report bad data as OSError/ZstdError, not as a type of their own."""
    text = str(exc).lower()
    return type(exc).__name__ == "ZstdError" or "invalid data stream" in text or \
        "not a gzipped file" in text or "decompress" in text


