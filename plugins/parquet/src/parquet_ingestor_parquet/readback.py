"""The dataset schema read back from what is already written: the newest files' footers, merged.

Every file carries every column known when it was *opened* (see :mod:`.dataset`), but files
stay open across batches (``--target-file-size``, up to ``--max-open-files``, one per
partition) and several flush workers commit them out of order: the newest file by mtime may
have been opened before a column was added, or a struct gained a field. So the footers of the
newest :data:`FOOTERS` files are read (in parallel, footers only) and merged: the newest file's
columns, order and types first (they win a conflict, which a dataset written by an older
version can hold), then the columns it lacks from newer to older files, and the struct fields
other files add (:func:`.dataset.widened`). The encoder reads it at start from the sink's root
(``sink.url("")``: ``file://`` and ``s3://``, through ``pyarrow.fs``, one listing of the
prefix; S3 takes the usual AWS variables, ``AWS_ENDPOINT_URL`` included); ``ingest schema``
prints it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .dataset import widened

#: How many of the newest files' footers are merged: the files that may have been open at
#: once, so committed in any order after a column was added. That is up to ``--max-open-files``
#: (64 by default) per process; twice that leaves room for the flush workers' files in
#: flight and a raised limit, at N small footer reads at start (an s3:// root: N GETs, run
#: :data:`READERS` at a time).
FOOTERS = 128
#: Footers read at once (an s3:// root: round trips in flight).
READERS = 8


@dataclass(frozen=True)
class NewestFile:
    path: str  # in the filesystem's terms
    url: str
    schema: pa.Schema
    files: int  # Parquet files seen


@dataclass(frozen=True)
class DatasetFiles:
    """The Parquet files under a root (one listing), newest first by mtime."""

    fs: pafs.FileSystem
    root: str
    url: str
    newest: list[pafs.FileInfo]  # newest first
    files: int  # Parquet files seen

    def shown(self, info: pafs.FileInfo) -> str:
        """``info``'s URL under the root as given."""
        return self.url.rstrip("/") + "/" + info.path[len(self.root):].lstrip("/")


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


def dataset_files(url: str, limit: int | None = None) -> DatasetFiles | None:
    """The ``limit`` (:data:`FOOTERS`) most recently written Parquet files under ``url``
    (hidden and ``_`` names skipped), newest first, or None when there is none."""
    fs, root = filesystem(url)
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return None
    found: list[pafs.FileInfo] = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.base_name.endswith(".parquet"):
            continue
        relative = info.path[len(root):].lstrip("/")
        if any(part.startswith((".", "_")) for part in relative.split("/")):
            continue
        found.append(info)
    if not found:
        return None
    found.sort(key=lambda info: (info.mtime, info.path), reverse=True)
    return DatasetFiles(fs, root, url, found[:FOOTERS if limit is None else limit], len(found))


def _footer(fs: pafs.FileSystem, path: str) -> pa.Schema:
    with fs.open_input_file(path) as handle:
        return pq.read_schema(handle)


def merged(schemas: list[pa.Schema]) -> pa.Schema:
    """One schema from several files' (newest first): the newest's columns, order and types,
    then the columns it lacks, from newer to older; struct fields the others add."""
    result = pa.schema(list(schemas[0]))
    for schema in schemas[1:]:
        for field in schema:
            index = result.get_field_index(field.name)
            if index < 0:
                result = result.append(field)
                continue
            wider = widened(result.field(index).type, field.type, as_written=True)
            if wider is not None:
                result = result.set(index, result.field(index).with_type(wider))
    return result


def newest_file(url: str) -> NewestFile | None:
    """The most recently written Parquet file under ``url`` (hidden and ``_`` names skipped),
    or None when there is none."""
    listed = dataset_files(url, limit=1)
    if listed is None:
        return None
    newest = listed.newest[0]
    return NewestFile(newest.path, listed.shown(newest), _footer(listed.fs, newest.path),
                      listed.files)


def footers(listed: DatasetFiles) -> list[pa.Schema]:
    """The schemas of ``listed.newest``, in that order, read in parallel."""
    if len(listed.newest) == 1:
        return [_footer(listed.fs, listed.newest[0].path)]
    with ThreadPoolExecutor(max_workers=min(READERS, len(listed.newest)),
                            thread_name_prefix="readback") as pool:
        return list(pool.map(lambda info: _footer(listed.fs, info.path), listed.newest))


def read_schema(listed: DatasetFiles) -> pa.Schema:
    """The merged schema of ``listed.newest`` (without file metadata)."""
    return merged([s.remove_metadata() for s in footers(listed)])


def dataset_schema(url: str) -> pa.Schema | None:
    """The dataset's schema (the newest :data:`FOOTERS` files', merged, without file
    metadata), or None when there is no Parquet file under ``url``."""
    listed = dataset_files(url)
    if listed is None:
        return None
    return read_schema(listed)
