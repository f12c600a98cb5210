"""Sink ``file``: a local directory, or an object store URL without a sink of its own.

A local directory: writes a hidden temporary file, fsyncs, then renames.

Keys never leave the root: absolute keys, ``..`` and symlinks that point outside are refused.
A process killed mid-write (SIGKILL, power loss) leaves its temporary file: at start the sink
removes files of its own temporary pattern (``.NAME.XXXXXXXX.tmp``) older than ``stale_temps``
(a live writer's file is never that old), and checks that it can write to the root.

A URL (``s3://``, ``gs://``, ``azure://``, written through smart-open, see :mod:`..urls`): an
object is visible only once committed (s3 multipart upload, gs resumable upload, azure block
list), and an abort terminates the upload, leaving nothing. Schemes that write in place
(``hdfs``, ``sftp``) cannot keep that promise and are refused; ``http(s)`` cannot be written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..interfaces import BaseSink
from ..keys import check_key
from ..urls import ATOMIC_SCHEMES, SCHEMES, UrlStore, UrlWriter, is_url, local_path

log = logging.getLogger(__name__)
_WHERE = "sink 'file' option 'path'"
_TEMP = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")  # _FileWriter's temporary names
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
    os, "O_CLOEXEC", 0)


class FileSink(BaseSink):
    def __init__(self, path: str, fsync: bool = True, stale_temps: float = 3600.0) -> None:
        self.store: UrlStore | None = None
        self.fsync = fsync
        self.stale_temps = stale_temps
        if is_url(path):
            scheme = path.split("://", 1)[0].lower()
            if scheme in SCHEMES and scheme not in ATOMIC_SCHEMES:
                raise ConfigError(f"{_WHERE}: {scheme}:// cannot be written all or nothing (an "
                                  f"object visible only once complete); use "
                                  f"{', '.join(s + '://' for s in ATOMIC_SCHEMES)} or a local path")
            self.store = UrlStore(path, _WHERE)
            self.prefix = path.rstrip("/") + "/"
            return
        path = local_path(path)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"sink 'file' option 'path': cannot create {path!r}: "
                              f"{exc.strerror}") from None
        self.root = Path(os.path.realpath(path))

    def start(self, context: Any = None) -> None:
        """Check the root is writable (``--validate`` too) and remove stale temporaries."""
        if self.store is not None:
            self.store.check_writable(self.prefix)
            return
        probe = self.root / f".ingest-probe.{secrets.token_hex(4)}"
        try:
            os.close(os.open(probe, _FLAGS, 0o644))
            os.unlink(probe)
        except OSError as exc:
            raise ConfigError(f"sink 'file' option 'path': cannot write to {str(self.root)!r}: "
                              f"{exc.strerror}") from None
        if self.stale_temps > 0:
            self.remove_stale_temps(self.stale_temps)

    def remove_stale_temps(self, older_than: float) -> int:
        """Delete this sink's temporary files not modified for ``older_than`` seconds."""
        cutoff = time.time() - older_than
        removed = 0
        for folder, _, names in os.walk(self.root):
            for name in names:
                if not _TEMP.fullmatch(name):
                    continue
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
        if removed:
            log.info("removed %d stale temporary file(s) under %s (left by a killed run)",
                     removed, self.root)
        return removed

    def resolve(self, key: str) -> Path:
        """The path for ``key``, creating its directories; refuses anything outside the root."""
        check_key(key)
        target = self.root.joinpath(*key.split("/"))
        parent = target.parent
        parent.mkdir(parents=True, exist_ok=True)
        real_parent = Path(os.path.realpath(parent))
        if real_parent != self.root and self.root not in real_parent.parents:
            raise PermissionError(f"key {key!r} resolves outside the sink root {self.root}")
        return real_parent / target.name

    def open(self, key: str, content_type: str,
             metadata: Mapping[str, str]) -> _FileWriter | UrlWriter:
        if self.store is not None:
            check_key(key)
            return self.store.writer(self.prefix + key, metadata, content_type)
        return _FileWriter(self.resolve(key), self.fsync)

    def url(self, key: str) -> str:
        if self.store is not None:
            return self.prefix + key
        return self.root.joinpath(*key.split("/")).as_uri()


class _FileWriter:
    def __init__(self, target: Path, fsync: bool) -> None:
        self.target = target
        self.fsync = fsync
        self.tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        self.fd: int | None = os.open(self.tmp, _FLAGS, 0o644)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        assert self.fd is not None, "write after commit or abort"
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        return len(data)

    def commit(self) -> None:
        assert self.fd is not None, "commit after commit or abort"
        if self.fsync:
            os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        os.replace(self.tmp, self.target)
        if self.fsync:
            dir_fd = os.open(self.target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def abort(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
