"""Source ``file``: one message per line of JSON-lines files, a directory, a glob, or stdin.

A file cannot redeliver, so a nacked line is queued again in memory, up to ``max_deliveries``
times; after that it is counted in :attr:`FileSource.failed` and the run reports it.

Stdin (``path=-``) is read by a background thread, so ``receive`` honours its timeout on a pipe
that stays open: batches age out, signals drain and ``--exit-when-idle`` works without EOF.
"""

from __future__ import annotations

import glob
import gzip
import logging
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from typing import IO

from ..errors import ConfigError
from ..interfaces import BaseSource, RunContext
from ..message import Message

log = logging.getLogger(__name__)
_BLOCK = 1 << 20  # bytes read at a time (then completed to a whole line)
_PATTERNS = ("*.jsonl", "*.ndjson", "*.json", "*.jsonl.gz", "*.ndjson.gz", "*.json.gz")


class FileSource(BaseSource):
    """Reads lines lazily, so memory does not grow with the file."""

    def __init__(self, path: str, max_deliveries: int = 3) -> None:
        self.path = path
        self.max_deliveries = max_deliveries
        self.files = ["-"] if path == "-" else self._expand(path)
        self.failed: list[Message] = []
        self._lines = self._iter_lines()
        self._block: list[Message] = []  # messages read ahead; self._cursor is the next one
        self._cursor = 0
        self._retry: deque[Message] = deque()
        self._deliveries: dict[str, int] = {}
        self._done = False
        self._open_file: IO[bytes] | None = None
        self._stdin: queue.Queue[Message | None] | None = None

    @staticmethod
    def _expand(path: str) -> list[str]:
        if os.path.isdir(path):
            found = sorted({f for p in _PATTERNS for f in glob.glob(os.path.join(path, "**", p),
                                                                    recursive=True)})
        elif any(ch in path for ch in "*?["):
            found = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        elif os.path.isfile(path):
            found = [path]
        else:
            raise ConfigError(f"source 'file' option 'path': {path!r} does not exist")
        if not found:
            raise ConfigError(f"source 'file' option 'path': no files match {path!r}")
        return found

    def _iter_lines(self) -> Generator[list[Message], None, None]:
        """Messages of every file, one block of whole lines (about 1 MiB) at a time.

        Blocks are split in C (``bytes.split``) and turned into Messages with ``map``: a
        per-line Python loop here was the receive thread's bottleneck.
        """
        for name in self.files:
            if name == "-":
                handle: IO[bytes] = sys.stdin.buffer
                label = "stdin"
            else:
                handle = gzip.open(name, "rb") if name.endswith(".gz") else open(name, "rb")  # type: ignore[assignment]  # noqa: SIM115
                label = name
            self._open_file = handle
            try:
                read = handle.read  # fills whole blocks (read1 stops at the 8 KiB buffer)
                number = 0  # lines before this block
                while block := read(_BLOCK):
                    lines = block.split(b"\n")
                    if lines[-1]:
                        lines[-1] += handle.readline().rstrip(b"\n")  # finish the last line
                    else:
                        lines.pop()  # the block ended with a line break
                    yield _messages(label, number, lines, b"\r" in block or b"\r" in lines[-1])
                    number += len(lines)
            finally:
                if handle is not sys.stdin.buffer:
                    handle.close()
                self._open_file = None

    def start(self, context: RunContext) -> None:
        """A run's ``--max-deliveries`` bounds how often a nacked line comes again."""
        if context.max_deliveries is not None:
            self.max_deliveries = context.max_deliveries

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out: list[Message] = []
        while self._retry and len(out) < max_messages:
            out.append(self._retry.popleft())
        if self._done:
            return out
        if self.path == "-":
            return self._receive_stdin(out, max_messages, timeout)
        want = max_messages - len(out)
        while want > 0:
            if self._cursor >= len(self._block):
                try:
                    self._block, self._cursor = next(self._lines), 0
                except StopIteration:
                    self._done = True
                    break
                continue
            taken = self._block[self._cursor:self._cursor + want]
            self._cursor += len(taken)
            want -= len(taken)
            out += taken
        return out

    def _receive_stdin(
        self, out: list[Message], max_messages: int, timeout: float
    ) -> list[Message]:
        if self._stdin is None:
            self._stdin = queue.Queue(maxsize=10_000)
            threading.Thread(target=self._pump_stdin, args=(self._stdin,),
                             name="file-source-stdin", daemon=True).start()
        try:
            item = self._stdin.get(timeout=timeout) if timeout > 0 and not out else (
                self._stdin.get_nowait())
            while True:
                if item is None:
                    self._done = True
                    break
                out.append(item)
                if len(out) >= max_messages:
                    break
                item = self._stdin.get_nowait()
        except queue.Empty:
            pass
        return out

    @staticmethod
    def _pump_stdin(into: queue.Queue[Message | None]) -> None:
        """Read fd 0 with os.read (no buffered-reader lock held at interpreter exit)."""
        try:
            for number, body in enumerate(_fd_lines(0), 1):
                if body.strip():
                    into.put(Message(f"stdin:{number}", body))
        except OSError as exc:
            log.error("reading stdin failed: %s", exc)
        finally:
            into.put(None)

    def ack(self, messages: Sequence[Message]) -> None:
        if self._deliveries:
            for message in messages:
                self._deliveries.pop(message.id, None)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        for message in messages:
            count = self._deliveries.get(message.id, 1) + 1
            if count > self.max_deliveries:
                self._deliveries.pop(message.id, None)
                self.failed.append(message)
                log.error("line %s failed %d times and cannot be redelivered from a file",
                          message.id, self.max_deliveries)
            else:
                self._deliveries[message.id] = count
                self._retry.append(message)

    @property
    def exhausted(self) -> bool:
        return self._done and not self._retry

    def close(self) -> None:
        """Lines given back but not delivered again before the run stopped count as failed."""
        if self._retry:
            log.error("%d nacked lines were not delivered again before the run stopped",
                      len(self._retry))
            self.failed.extend(self._retry)
            self._retry.clear()
        if self._open_file is not None and self._stdin is None:
            self._lines.close()


def _fd_lines(fd: int) -> Iterator[bytes]:
    """Lines of a file descriptor without their line ending, as soon as each one is complete."""
    pending = b""
    while chunk := os.read(fd, 1 << 16):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")


def _messages(label: str, before: int, lines: list[bytes], crlf: bool) -> list[Message]:
    """One Message per non-blank line, id ``label:line number`` (1-based, blank lines count)."""
    if crlf:
        lines = [line.rstrip(b"\r") for line in lines]
    prefix = label + ":"
    if all(map(bytes.strip, lines)):  # no blank line: ids follow the positions
        ids = map(prefix.__add__, map(str, range(before + 1, before + 1 + len(lines))))
        return list(map(Message, ids, lines))
    return [Message(f"{prefix}{before + i}", line)
            for i, line in enumerate(lines, 1) if line.strip()]
