"""One Parquet data file streamed into the table's data location, and what it knows once done.

The file is written once, through the table's FileIO (local disk, S3, ...), and never rewritten:
the Iceberg data-file entry is built from its footer, which is kept from the last bytes
written, so finishing a file costs no read back (unless the footer is unusually large).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

TAIL = 256 * 1024  # bytes kept from the end of each file: enough for most footers


@dataclass
class StagedFile:
    """A finished data file not yet in the table."""

    path: str
    size: int
    metadata: Any  # pyarrow.parquet.FileMetaData
    object_meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.metadata.num_rows)


class DataFileWriter:
    """A :class:`~parquet_ingestor.interfaces.SinkWriter` for one data file.

    ``commit()`` finishes the file and hands a :class:`StagedFile` to ``on_staged``: the file is
    complete but not visible to readers until a snapshot adds it. ``abort()`` deletes it.
    """

    def __init__(self, io: Any, path: str, object_meta: Mapping[str, str],
                 on_staged: Callable[[StagedFile], None],
                 on_done: Callable[[DataFileWriter], None] = lambda writer: None) -> None:
        self.io = io
        self.path = path
        self.object_meta = dict(object_meta)
        self._on_staged = on_staged
        self._on_done = on_done
        self._stream: Any = io.new_output(path).create(overwrite=True)
        self._tail = bytearray()
        self._size = 0
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._stream.write(data)
        n = len(data) if not isinstance(data, memoryview) else data.nbytes
        self._size += n
        tail = self._tail
        tail += memoryview(data).cast("B")[-TAIL:]
        if len(tail) > 2 * TAIL:
            del tail[:-TAIL]
        return n

    def commit(self) -> None:
        if self._done:
            return
        self._stream.close()
        sync_local(self.path)  # on disk before a snapshot can name it (object stores: at close)
        self._done = True
        self._on_done(self)
        metadata = self._footer()
        self._on_staged(StagedFile(self.path, self._size, metadata, self.object_meta))

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._on_done(self)
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001 - deleting below is what matters
                log.debug("closing %s before deleting it failed", self.path, exc_info=True)
        delete_quietly(self.io, self.path)

    def _footer(self) -> Any:
        """The Parquet footer, from the kept tail, else read back from storage."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tail = bytes(self._tail)
        if len(tail) >= 8 and tail[-4:] == b"PAR1":
            (length,) = struct.unpack("<I", tail[-8:-4])
            if length + 8 <= len(tail):
                return pq.read_metadata(pa.BufferReader(b"PAR1" + tail[-(length + 8):]))
        with self.io.new_input(self.path).open() as stream:
            return pq.read_metadata(stream)


def local_path(location: str) -> str | None:
    """The filesystem path of a local warehouse ``location`` (None for object stores)."""
    if location.startswith("file://"):
        return location[len("file://"):]
    return location if location.startswith("/") else None


def sync_local(*locations: str | None) -> None:
    """fsync local files and their folders, as the file sink does before it acks: a snapshot
    must not name a data file (or metadata) that a power cut could still lose."""
    folders: set[str] = set()
    for location in locations:
        path = local_path(location) if location else None
        if path is None:
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders.add(os.path.dirname(path))
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def delete_quietly(io: Any, path: str) -> None:
    """Delete a data file never added to the table; a failure leaves an orphan, logged."""
    try:
        io.delete(path)
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - an orphan is harmless, see the README
        log.warning("could not delete uncommitted data file %s (an orphan now): %s", path, exc)
