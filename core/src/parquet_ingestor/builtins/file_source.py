"""Source ``file``: one message per line of JSON-lines files, a directory, a glob, or stdin.

``path`` may be a URL (``s3://``, ``http(s)://``...): :mod:`..urls` lists and reads it, with
retries; a file that still cannot be read is logged, the next one is read, and the run exits 1
(:attr:`FileSource.unread`). Local paths take the fast path below.

A file cannot redeliver, so a nacked line waits in memory for the nack's delay (in the core's
:class:`~parquet_ingestor.redelivery.HeldMessages`) and is delivered again, up to
``max_deliveries`` times. A line read from a file (not stdin) settles without its body: the
core may drop the body once the line's rows are encoded, and a nack reads it again from the
file (where each block of lines began is remembered), so lines waiting in open files cost no
input bytes; after that it is counted in :attr:`FileSource.failed` and the run
reports it. The source is exhausted only when no nacked line waits either.

In a pipeline whose transformer reads blocks (``RunContext.multi_record``: the ``json``
transformer without ``add_attributes``, ``--batch-max-records`` off) a file is handed over as
one message per block of whole lines (``Message.records`` lines, about 64 KiB, a quarter of
``--batch-max-bytes`` at most): no bytes object and no Message per line on the hot path. A
block whose line is rejected, or that is nacked, is split into its lines (:meth:`split`), which
are then settled one by one, as if they had been read line by line (a CR ending a line and a
byte order mark opening one dropped). A block of one line is read line by line. Counts
(received, acked) count a block's lines.

Stdin (``path=-``) is read by a background thread, so ``receive`` honours its timeout on a pipe
that stays open: batches age out, signals drain and ``--exit-when-idle`` works without EOF. What
it reads ahead is bounded in bytes (``read_ahead``), not lines.

No line that was read is lost: on a drain, :meth:`FileSource.stop_reading` stops reading and the
pipeline receives what was read; whatever was read but not written when the source closes (an
abort, lines that failed, an incomplete last line) is saved to a spill file, named in the log.
"""

from __future__ import annotations

import bisect
import glob
import gzip
import logging
import os
import select
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Generator, Sequence
from datetime import UTC, datetime
from itertools import repeat
from operator import attrgetter
from typing import IO

from ..errors import ConfigError
from ..interfaces import BaseSource, RunContext
from ..message import _NO_ATTRIBUTES, Message
from ..redelivery import HeldMessages
from ..units import parse_size
from ..urls import ReadFailed, UrlStore, is_url, local_path

log = logging.getLogger(__name__)
_BLOCK = 1 << 20  # bytes read at a time (then completed to a whole line)
#: bytes of a block of lines: small enough that reading, finishing and counting its lines
#: stay in the CPU cache (64 KiB: 0.19 CPU-s per 1M events, 1 MiB: 0.28 s)
_LINES_BLOCK = 1 << 16
_SMALLEST_BLOCK = 1 << 12  # bytes: blocks of lines are at least this big
_CHUNK = 1 << 16  # bytes of stdin read at a time
_POLL = 0.1  # seconds the stdin reader waits for input before checking for a stop
_BODY = attrgetter("body")
_BOM = b"\xef\xbb\xbf"
_NL_BOM = b"\n" + _BOM
_WHERE = "source 'file' option 'path'"
_BOM_LEAD = _BOM[:1]
_PATTERNS = ("*.jsonl", "*.ndjson", "*.json", "*.jsonl.gz", "*.ndjson.gz", "*.json.gz")


class FileSource(BaseSource):
    """Reads lines lazily, so memory does not grow with the file."""

    def __init__(self, path: str, max_deliveries: int = 3, read_ahead: int | str = "4MiB",
                 spill: str | None = None) -> None:
        self.path = path
        self.max_deliveries = max_deliveries
        self.read_ahead = parse_size(read_ahead) if isinstance(read_ahead, str) else read_ahead
        self.spill = spill or ""
        # a URL is listed and read through smart-open (..urls); a local path takes the fast path
        self._store = UrlStore(path, _WHERE) if is_url(path) else None
        self.files = ["-"] if path == "-" else (
            self._store.expand(path) if self._store else self._expand(local_path(path)))
        self.unread: list[str] = []  # files not read to their end (the log says why); exit 1
        self.complete: list[str] = []  # files read to their end
        self.failed: list[Message] = []
        self.spilled = 0  # lines saved to the spill file by close()
        self.unwritten: list[Message] = []  # lines read and not written, found by close()
        # lines delivered and not acked, and nacked ones waiting for their delay; leased
        # without counting, so that receive and ack cost no Python work per line
        self._held = HeldMessages()
        self._nacked = threading.Event()  # wakes a receive waiting for a nacked line
        self._stopping = threading.Event()
        self._position = ("", 0)  # the file being read and the lines read from it
        self._lines = self._iter_lines()
        self._block: list[Message] = []  # messages read ahead; self._cursor is the next one
        self._cursor = 0
        self._done = False
        self._open_file: IO[bytes] | None = None
        self._stdin: _ReadAhead | None = None
        self._stdin_thread: threading.Thread | None = None
        self._closed = False
        # per file label: (line number before the block, byte offset, byte length) of each
        # block read line by line, and of each block of lines split, so a line whose body
        # was dropped can be read again (a block of lines not split remembers its own)
        self._blocks: dict[str, list[tuple[int, int, int]]] = {}
        self._block_bytes = _BLOCK  # bytes read at a time
        self._multi = False  # hand over blocks of lines (RunContext.multi_record)

    @property
    def settles_without_body(self) -> bool:
        """Lines from local files can be read again, so held lines need not keep their
        bodies (stdin and URLs are read once)."""
        return self.path != "-" and self._store is None

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
            label = "stdin" if name == "-" else name
            number = 0  # lines before this block
            offset = 0
            # local files can be read again by offset (URLs are read once)
            blocks = (self._blocks.setdefault(label, [])
                      if name != "-" and self._store is None else None)
            try:
                handle = self._open(name)
                self._open_file = handle
                read = handle.read  # fills whole blocks (read1 stops at the 8 KiB buffer)
                size, multi = self._block_bytes, self._multi
                while block := read(size):
                    if multi:
                        # the block's lines without the last line break: one copy of it
                        if block[-1:] == b"\n":
                            text = block[:-1]
                        else:  # finish the last line
                            tail = handle.readline()
                            text = block + (tail[:-1] if tail[-1:] == b"\n" else tail)
                        del block  # freed before the next read
                        count = text.count(b"\n") + 1
                        if count > 1:  # a CR or a BOM is dealt with if a line is rejected
                            span = None
                            if blocks is not None:  # remembered by the block (and, once
                                end = handle.tell()  # split, in blocks: split())
                                span = (offset, end - offset)
                                offset = end
                            number += count
                            self._position = (label, number)
                            yield [_Block(label, number - count, count, text, span)]
                            continue
                        lines = text.split(b"\n")  # one line
                        crlf, bom = b"\r" in text, _bom_at_line_start(text)
                    else:
                        lines = block.split(b"\n")
                        if lines[-1]:
                            lines[-1] += handle.readline().rstrip(b"\n")  # finish the last line
                        else:
                            lines.pop()  # the block ended with a line break
                        crlf, bom = b"\r" in block or b"\r" in lines[-1], _bom_at_line_start(block)
                    if blocks is not None:
                        end = handle.tell()
                        blocks.append((number, offset, end - offset))
                        offset = end
                    number += len(lines)
                    self._position = (label, number)
                    yield _messages(label, number - len(lines), lines, crlf, bom)
            except (ReadFailed, OSError, EOFError, zlib.error) as exc:  # the next file is read
                self.unread.append(name)
                where = f"byte {offset} of its text; " if blocks is not None else ""
                log.error("could not read %s to its end, after line %d: %s (%slines read "
                          "before are kept; exit 1)", label, number, exc, where)
                continue
            else:
                self.complete.append(name)
                if self._store is not None:
                    log.info("read %s to its end (%d lines)", name, number)
            finally:
                if self._open_file is not None and self._open_file is not sys.stdin.buffer:
                    self._open_file.close()
                self._open_file = None

    def _open(self, name: str) -> IO[bytes]:
        if name == "-":
            return sys.stdin.buffer
        if self._store is not None:  # retries a read that fails midway
            return self._store.reader(name)  # type: ignore[return-value]
        return gzip.open(name, "rb") if name.endswith(".gz") else open(name, "rb")  # type: ignore[return-value]  # noqa: SIM115

    def start(self, context: RunContext) -> None:
        """A run's ``--max-deliveries`` bounds how often a nacked line comes again; files are
        handed over in blocks of lines when the run allows it (``multi_record``), each a
        quarter of a batch at most."""
        if context.max_deliveries is not None:
            self.max_deliveries = context.max_deliveries
        self._multi = context.multi_record is True and self.path != "-"
        if self._multi and context.batch is not None:
            self._block_bytes = max(_SMALLEST_BLOCK,
                                    min(_LINES_BLOCK, context.batch.max_bytes // 4))

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        again = self._held.due(max_messages)  # nacked lines whose delay has passed (leased)
        if self._done:
            return again or self._wait_due(max_messages, timeout)
        out = self._read(max_messages - len(again), 0.0 if again else timeout)
        if out:
            self._held.lease(out, count=False)  # a line's deliveries: None, then due() counts
        return again + out if again else out

    def _wait_due(self, max_messages: int, timeout: float) -> list[Message]:
        """Everything was read: wait up to ``timeout`` for a nacked line to be due."""
        self._nacked.clear()
        wait = self._held.next_due()
        if wait is None or timeout <= 0:
            return []
        if wait > 0:
            self._nacked.wait(min(wait, timeout))
        return self._held.due(max_messages)

    def _read(self, want: int, timeout: float) -> list[Message]:
        """Up to ``want`` lines not delivered before."""
        out: list[Message] = []
        nbytes = 0  # of blocks taken: a receive holds about _BLOCK bytes of them at most
        if self.path == "-":
            wait = self._held.next_due()  # a nacked line due meanwhile ends the wait
            return self._receive_stdin(out, want, timeout if wait is None else min(wait, timeout))
        while want > 0:
            if self._cursor >= len(self._block):
                if self._stopping.is_set():
                    self._done = True
                    label, number = self._position
                    if label:
                        log.info("stopped reading %s after line %d (the rest was not read)",
                                 label, number)
                    break
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
            if taken[-1].records > 1:
                nbytes += len(taken[-1].body)
                if nbytes >= _BLOCK:
                    break
        return out

    def stop_reading(self) -> None:
        """A drain begins: read nothing more; ``receive`` hands over what was already read,
        then the source is exhausted. Thread-safe (a signal handler may call it)."""
        self._stopping.set()

    def _receive_stdin(
        self, out: list[Message], max_messages: int, timeout: float
    ) -> list[Message]:
        if self._stdin is None:
            self._stdin = _ReadAhead(self.read_ahead)
            self._stdin_thread = threading.Thread(
                target=self._pump_stdin, args=(self._stdin,), name="file-source-stdin",
                daemon=True)
            self._stdin_thread.start()
        got, ended = self._stdin.take(max_messages - len(out), 0.0 if out else timeout)
        out += got
        if ended:
            self._done = True
        return out

    def _pump_stdin(self, into: _ReadAhead) -> None:
        """Read fd 0 with os.read (no buffered-reader lock held at interpreter exit), waiting
        with select() so that a drain or close stops it within a fraction of a second."""
        number = 0  # lines before the next one
        pending = b""
        try:
            while not self._stopping.is_set():
                try:
                    ready = select.select([0], [], [], _POLL)[0]
                except (OSError, ValueError):  # not selectable: plain blocking reads
                    ready = [0]
                if not ready:
                    continue
                chunk = os.read(0, _CHUNK)
                if not chunk:  # end of input: a last line without a line break is complete
                    if pending:
                        lines, pending = [pending], b""
                        into.put(_messages("stdin", number, lines, b"\r" in lines[0],
                                           _BOM in lines[0]),
                                 len(lines[0]))
                    break
                pending += chunk
                if b"\n" not in chunk:
                    continue
                *lines, pending = pending.split(b"\n")
                size = sum(map(len, lines))
                # lines after the first begin in this chunk; the first may begin earlier
                bom = (_BOM_LEAD in chunk and _NL_BOM in chunk) or lines[0].startswith(_BOM)
                into.put(_messages("stdin", number, lines, b"\r" in chunk, bom), size)
                number += len(lines)
        except OSError as exc:
            log.error("reading stdin failed: %s", exc)
        finally:
            into.end(pending, number + 1)

    def ack(self, messages: Sequence[Message]) -> None:
        self._held.settle(messages)

    def split(self, message: Message) -> list[Message]:
        """A block's lines, one message each (blank lines skipped; ids ``label:line
        number``); they replace the block: each is acked or nacked on its own. Another
        message comes back as it is. Called from the flush workers."""
        if not isinstance(message, _Block):
            return [message]
        if not message.body:
            self._restore_bodies([message])
        if message.span is not None:  # its lines' bodies may be dropped and read again
            bisect.insort(self._blocks.setdefault(message.label, []),
                          (message.before, *message.span))
        lines = message.lines()
        self._held.forget([message])
        self._held.lease(lines, count=False)
        return lines

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        """Lines come back after ``delay`` seconds (None: at once), unless delivered
        ``max_deliveries`` times already: those failed. A block comes back line by line
        (:meth:`split`), so a line that fails again and again is isolated."""
        if any(isinstance(m, _Block) for m in messages):
            messages = [line for m in messages for line in self.split(m)]
        self._restore_bodies(messages)
        limit = self.max_deliveries
        failed = [m for m in messages if (m.deliveries or 1) >= limit]
        if failed:
            self._held.forget(failed)
            messages = [m for m in messages if (m.deliveries or 1) < limit]
        self._held.nack(messages, delay)
        self._nacked.set()
        if failed:  # one line per call, not per input line (a full disk fails them all)
            self.failed += failed
            log.error("%d line(s) failed %d times and cannot be redelivered from a file "
                      "(e.g. %s); they are saved with the unwritten lines at the end",
                      len(failed), self.max_deliveries, failed[0].id)

    @property
    def exhausted(self) -> bool:
        """Everything was read and no nacked line waits to be delivered again."""
        return self._done and self._held.next_due() is None

    def close(self) -> None:
        """Lines given back but not delivered again before the run stopped count as failed.
        Every line read and not written (failed, given back, still held after an abort, read
        ahead, an incomplete last line) is saved to the spill file, and the count logged."""
        if self._closed:
            return
        self._closed = True
        waiting = self._held.waiting()  # given back, not delivered again before the stop
        self.failed.extend(waiting)
        given_back = set(waiting)
        held = [m for m in self._held.release() if m not in given_back]
        self._restore_bodies(held)
        held = [line for m in held for line in (m.lines() if isinstance(m, _Block) else (m,))]
        self._stopping.set()
        self._nacked.set()
        unwritten: list[Message] = [*self.failed, *sorted(held, key=_line_order)]
        partial = b""
        if self._stdin is not None:
            rest, partial = self._stdin.close()
            unwritten += rest
        elif self._cursor < len(self._block):  # still in its file: say where delivery stopped
            log.warning("not delivered: %s and the lines after it", self._block[self._cursor].id)
        self._block, self._cursor = [], 0
        if self._open_file is not None and self._stdin is None:
            self._lines.close()
        self.unwritten = unwritten + ([Message("stdin:partial", partial)] if partial else [])
        if self.unwritten:
            self._spill(self.unwritten, bool(partial))
        if self.unread:
            log.error("%d file(s) not read to their end: %s; read to their end: %s",
                      len(self.unread), ", ".join(self.unread),
                      ", ".join(self.complete) or "none")

    def _restore_bodies(self, messages: Sequence[Message]) -> None:
        """Read again the lines whose bodies were dropped (a line is never empty), one read
        per block of lines that holds any of them."""
        wanted: dict[tuple[str, int], list[Message]] = {}
        for message in messages:
            if not message.body and isinstance(message, _Block):
                message.restore()
            elif not message.body:
                label, _, number = message.id.rpartition(":")
                blocks = self._blocks.get(label)
                if blocks and number.isdigit():
                    i = bisect.bisect_left(blocks, (int(number), -1, -1)) - 1
                    wanted.setdefault((label, max(i, 0)), []).append(message)
        for (label, i), lost in wanted.items():
            before, offset, length = self._blocks[label][i]
            try:
                data = _read_range(label, offset, length)
            except OSError as exc:
                log.error("could not read %d lines of %s again: %s", len(lost), label, exc)
                continue
            lines = data.split(b"\n")
            if not lines[-1]:
                lines.pop()
            again = {m.id: m.body for m in _messages(label, before, lines, b"\r" in data,
                                                      _bom_at_line_start(data))}
            for message in lost:
                message.body = again.get(message.id, message.body)

    def _spill(self, messages: list[Message], partial: bool) -> None:
        """Save unwritten lines, one per line as they were read, and say where (without a
        ``spill`` path, as from Python by default, they stay in :attr:`unwritten`)."""
        if not self.spill:
            log.error("%d lines read but not written (see FileSource.unwritten), e.g. %s",
                      len(messages), ", ".join(m.id for m in messages[:5]))
            return
        path = self.spill.format(time=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
                                 pid=os.getpid())
        bodies = [m.body for m in messages]
        try:
            with open(path, "ab") as handle:
                handle.write(b"".join(body + b"\n" for body in bodies))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            log.error("%d lines read but not written could not be saved to %s: %s; their ids: "
                      "%s", len(bodies), path, exc.strerror,
                      ", ".join(m.id for m in messages[:20]))
            return
        self.spilled = len(bodies)
        note = " (the last one incomplete: input stopped mid-line)" if partial else ""
        log.error("%d lines read but not written were saved to %s%s; replay them with "
                  "--source-opt path=%s", len(bodies), os.path.abspath(path), note,
                  os.path.abspath(path))


def _read_range(name: str, offset: int, length: int) -> bytes:
    """``length`` bytes of file ``name`` from ``offset`` (of the uncompressed text if gzip)."""
    handle: IO[bytes] = gzip.open(name, "rb") if name.endswith(".gz") else open(name, "rb")  # type: ignore[assignment]  # noqa: SIM115
    with handle:
        handle.seek(offset)
        return handle.read(length)


def _bom_at_line_start(block: bytes) -> bool:
    """A byte order mark opens a line of ``block`` (which starts at a line start). U+FEFF
    inside values is common in real text and must not cost a pass over every line. The
    one-byte test runs at memchr speed; the four-byte search (~1 ns a byte: its skip table
    is no help on JSON text) only runs on blocks that hold a 0xEF byte at all."""
    return block.startswith(_BOM) or (_BOM_LEAD in block and _NL_BOM in block)


def _line_order(message: Message) -> tuple[str, int]:
    """Sort key of ``label:N`` ids: input order."""
    label, _, number = message.id.rpartition(":")
    return label, int(number) if number.isdigit() else 0


class _ReadAhead:
    """The stdin reader's queue of message lists, bounded in bytes of line bodies: ``put``
    waits while ``limit`` bytes are queued (one list always fits, so a huge line cannot block
    for ever). ``end`` marks the end of input; ``close`` returns what was never taken."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self._items: deque[tuple[list[Message], int]] = deque()
        self._cond = threading.Condition()
        self._ended = False
        self._closed = False
        self._partial = b""
        self._leftover: list[Message] = []

    def put(self, messages: list[Message], size: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.bytes < self.limit or self._closed)
            if self._closed:
                self._leftover += messages
                return
            self._items.append((messages, size))
            self.bytes += size
            self._cond.notify_all()

    def end(self, partial: bytes, number: int) -> None:
        """No more input; ``partial`` is an incomplete last line read before a stop."""
        with self._cond:
            self._ended = True
            self._partial = partial
            if partial:
                log.warning("stdin: stopped reading in the middle of line %d (%d bytes read); "
                            "it is saved with the unwritten lines", number, len(partial))
            self._cond.notify_all()

    def take(self, most: int, timeout: float) -> tuple[list[Message], bool]:
        """Up to ``most`` messages, waiting at most ``timeout`` s for the first; and whether
        the input has ended and everything was taken."""
        out: list[Message] = []
        with self._cond:
            if not self._items and not self._ended and timeout > 0:
                self._cond.wait_for(lambda: self._items or self._ended, timeout)
            while self._items and len(out) < most:
                messages, size = self._items.popleft()
                want = most - len(out)
                if len(messages) > want:
                    rest = messages[want:]
                    rest_size = sum(map(len, map(_BODY, rest)))
                    self._items.appendleft((rest, rest_size))
                    messages, size = messages[:want], size - rest_size
                    self.bytes -= size
                else:
                    self.bytes -= size
                out += messages
            if out:
                self._cond.notify_all()
            return out, self._ended and not self._items

    def close(self) -> tuple[list[Message], bytes]:
        """Stop: (messages never taken, an incomplete last line)."""
        with self._cond:
            self._closed = True
            rest = [m for messages, _ in self._items for m in messages]
            self._items.clear()
            self.bytes = 0
            self._cond.notify_all()
        deadline = time.monotonic() + 2 * _POLL + 1.0
        with self._cond:  # a put that was waiting for room hands its messages over
            self._cond.wait_for(lambda: self._ended, max(0.0, deadline - time.monotonic()))
            return rest + self._leftover, self._partial


class _Line(Message):
    """A line of an input: a Message whose id, ``label:line number``, is made when asked for
    (errors, the spill file, logs) rather than for every line read: the id strings cost the
    receive thread ~0.3 us and each held line ~100 bytes. Set, the id is kept as given."""

    __slots__ = ("_label", "_number")

    def __init__(self, label: str, number: int | None, body: bytes) -> None:
        self.body = body
        self.attributes = _NO_ATTRIBUTES
        self.handle = None
        self.deliveries = None
        self._label = label
        self._number = number

    @property  # type: ignore[override]
    def id(self) -> str:
        number = self._number
        return self._label if number is None else f"{self._label}:{number}"

    @id.setter
    def id(self, value: str) -> None:
        self._label, self._number = value, None


class _Block(Message):
    """``records`` whole lines of a file (at least two, joined by ``\\n``, no line break at
    the end), the first one numbered ``before + 1``: one message for all of them. A CR ending
    a line is JSON whitespace to the decoder; a byte order mark opening a line makes it fail,
    and its lines (:meth:`lines`) drop both, as when read line by line.
    ``span`` is where the lines are in the file's text (offset, bytes), to read them again
    once the body was dropped (None: a URL, read once). Its id is ``label:first-last``."""

    __slots__ = ("records", "label", "before", "span")

    def __init__(self, label: str, before: int, records: int, body: bytes,
                 span: tuple[int, int] | None) -> None:
        self.body = body
        self.attributes = _NO_ATTRIBUTES
        self.handle = None
        self.deliveries = None
        self.records = records
        self.label = label
        self.before = before
        self.span = span

    @property  # type: ignore[override]
    def id(self) -> str:
        return f"{self.label}:{self.before + 1}-{self.before + self.records}"

    @id.setter
    def id(self, value: str) -> None:
        raise AttributeError("a block's id names its lines")

    def lines(self) -> list[Message]:
        """One message per non-blank line, as when read line by line: a blank line has no
        message, a CR ending a line and a byte order mark opening one are dropped; with this
        block's delivery count."""
        body = self.body
        lines = _messages(self.label, self.before, body.split(b"\n"), b"\r" in body,
                          _bom_at_line_start(body))
        for line in lines:
            line.deliveries = self.deliveries
        return lines

    def restore(self) -> None:
        """Read the body again from the file (it was dropped while the block waited)."""
        if self.span is None:
            return
        offset, length = self.span
        try:
            data = _read_range(self.label, offset, length)
        except OSError as exc:
            log.error("could not read lines %d-%d of %s again: %s", self.before + 1,
                      self.before + self.records, self.label, exc)
            return
        self.body = data[:-1] if data[-1:] == b"\n" else data


def _messages(label: str, before: int, lines: list[bytes], crlf: bool,
              bom: bool = False) -> list[Message]:
    """One Message per non-blank line, id ``label:line number`` (1-based, blank lines count).
    A UTF-8 byte order mark opening a line (files saved by Windows tools) is dropped."""
    if crlf:
        lines = [line.rstrip(b"\r") for line in lines]
    if bom:
        lines = [line.removeprefix(_BOM) for line in lines]
    if all(map(bytes.strip, lines)):  # no blank line: numbers follow the positions
        return list(map(_Line, repeat(label), range(before + 1, before + 1 + len(lines)), lines))
    return [_Line(label, before + i, line) for i, line in enumerate(lines, 1) if line.strip()]
