"""Sink ``file``: a local directory. Writes a hidden temporary file, fsyncs, then renames.

Keys never leave the root: absolute keys, ``..`` and symlinks that point outside are refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError
from ..interfaces import BaseSink
from ..keys import check_key

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
    os, "O_CLOEXEC", 0)


class FileSink(BaseSink):
    def __init__(self, path: str, fsync: bool = True) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"sink 'file' option 'path': cannot create {path!r}: "
                              f"{exc.strerror}") from None
        self.root = Path(os.path.realpath(path))
        self.fsync = fsync

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

    def open(self, key: str, content_type: str, metadata: Mapping[str, str]) -> _FileWriter:
        return _FileWriter(self.resolve(key), self.fsync)

    def url(self, key: str) -> str:
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
