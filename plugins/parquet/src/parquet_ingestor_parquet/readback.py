"""The dataset schema read back from what is already written: the newest Parquet file's footer.

Every file carries every column known when it was written (see :mod:`.dataset`), so the newest
file's schema is the dataset's. The encoder reads it at start from the sink's root
(``sink.url("")``: ``file://`` and ``s3://``, through ``pyarrow.fs``; S3 takes the usual AWS
variables, ``AWS_ENDPOINT_URL`` included); ``ingest schema`` prints it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


@dataclass(frozen=True)
class NewestFile:
    path: str  # in the filesystem's terms
    url: str
    schema: pa.Schema
    files: int  # Parquet files seen


def filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a directory URL or a local path."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme else url
        return pafs.LocalFileSystem(), os.path.abspath(path)
    if parsed.scheme == "s3":
        options: dict[str, object] = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            target = urlparse(endpoint)
            options["endpoint_override"] = target.netloc or endpoint
            options["scheme"] = target.scheme or "https"
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["region"] = region
        return pafs.S3FileSystem(**options), f"{parsed.netloc}{unquote(parsed.path)}".rstrip("/")
    return pafs.FileSystem.from_uri(url)


def newest_file(url: str) -> NewestFile | None:
    """The most recently written Parquet file under ``url`` (hidden and ``_`` names skipped),
    or None when there is none."""
    fs, root = filesystem(url)
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return None
    newest: pafs.FileInfo | None = None
    count = 0
    for info in infos:
        if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
            continue
        relative = info.path[len(root):].lstrip("/")
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        count += 1
        if newest is None or (info.mtime, info.path) > (newest.mtime, newest.path):
            newest = info
    if newest is None:
        return None
    with fs.open_input_file(newest.path) as handle:
        schema = pq.read_schema(handle)
    prefix = url.rstrip("/")
    shown = prefix + "/" + newest.path[len(root):].lstrip("/")
    return NewestFile(newest.path, shown, schema, count)


def dataset_schema(url: str) -> pa.Schema | None:
    """The dataset's schema (the newest file's, without file metadata), or None."""
    found = newest_file(url)
    if found is None:
        return None
    return found.schema.remove_metadata()
