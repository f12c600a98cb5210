"""Source ``replay`` (and ``ingest replay URL...``): error-sink records become messages again.

Each record's ``body`` (or ``body_base64``) is the message body; its id is the original
``message_id``, and its attributes are the original ones plus ``rejected_reason`` (why it was
rejected) and ``replayed_from`` (the record's ``FILE:LINE``). Records that fail again go to the
run's error sink with their new reason. Files are read by the ``file`` source (one per URL
given: local, or any smart-open URL), so nacks, redelivery and spill behave as for any file.

Idempotent: once every record of an error file is written or re-rejected (acked), the file gets
a ``FILE.replayed`` marker naming where they went; files with a marker are skipped unless
``force``. A run that stops early marks only the files whose records were all acked.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
from base64 import b64decode
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO

from .builtins.file_source import FileSource
from .errors import ConfigError
from .interfaces import BaseSource, RunContext
from .message import Message
from .urls import UrlStore, is_url, local_path

log = logging.getLogger(__name__)
MARKER = ".replayed"
_WHERE = "replay"
_RECORD_KEYS = ("message_id", "reason")


class ReplaySource(BaseSource):
    """Reads error-sink record files and delivers the messages they hold."""

    def __init__(self, path: Sequence[str], force: bool = False, max_deliveries: int = 3) -> None:
        self.force = force
        #: where replayed records go, written into markers (the ``ingest replay`` command
        #: sets the error sink's; the sink's comes from the run context)
        self.destinations: dict[str, str] = {}
        self.skipped: list[str] = []  # files with a marker, not replayed
        self.marked: list[str] = []  # markers written by close()
        self._stores: list[UrlStore | None] = []
        self._inners: list[FileSource] = []
        self._acked: Counter[str] = Counter()  # records acked per file
        for url in path:
            store, files = expand(url)
            todo = []
            for name in files:
                if not force and _exists(store, name + MARKER):
                    self.skipped.append(name)
                else:
                    todo.append(name)
            for name in todo:
                check_record_file(store, name)
            if not todo:
                continue
            inner = FileSource(url, max_deliveries=max_deliveries)
            inner.files = todo  # the listing above, minus files already replayed
            self._inners.append(inner)
            self._stores.append(store)
        if self.skipped:
            log.warning("skipping %d file(s) already replayed (a %s marker next to each; "
                        "--force replays them again), e.g. %s", len(self.skipped), MARKER,
                        self.skipped[0])

    def start(self, context: RunContext) -> None:
        lines = dataclasses.replace(context, multi_record=False)  # a record file's lines are
        for inner in self._inners:  # error records, each turned into its own message
            inner.start(lines)
        if context.sink is not None and "sink" not in self.destinations:
            self.destinations["sink"] = context.sink.url("")

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        active = [inner for inner in self._inners if not inner.exhausted]
        for i, inner in enumerate(active):
            got = inner.receive(max_messages, timeout if i == len(active) - 1 else 0.0)
            if got:
                return [_message(inner, m) for m in got]
        return []

    def ack(self, messages: Sequence[Message]) -> None:
        for inner, originals in _by_inner(messages).items():
            inner.ack(originals)
            self._acked.update(m.id.rpartition(":")[0] for m in originals)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        for inner, originals in _by_inner(messages).items():
            inner.nack(originals, delay)

    def stop_reading(self) -> None:
        for inner in self._inners:
            inner.stop_reading()

    @property
    def exhausted(self) -> bool:
        return all(inner.exhausted for inner in self._inners)

    @property
    def failed(self) -> list[Message]:
        return [m for inner in self._inners for m in inner.failed]

    @property
    def unread(self) -> list[str]:
        return [name for inner in self._inners for name in inner.unread]

    def close(self) -> None:
        """Mark every file read to its end whose records were all acked."""
        for inner, store in zip(self._inners, self._stores, strict=True):
            inner.close()
            left = {m.id.rpartition(":")[0] for m in inner.unwritten}
            for name in inner.complete:
                if name in left:
                    continue
                note = {"replayed_at": datetime.now(UTC).isoformat(),
                        "records": self._acked.get(name, 0), **self.destinations}
                data = json.dumps(note).encode() + b"\n"
                try:
                    _write(store, name + MARKER, data)
                except Exception as exc:  # noqa: BLE001 - a replay again writes duplicates
                    log.error("replayed %s but could not write its marker %s: %s (a second "
                              "replay would write its records again)", name, MARKER, exc)
                    continue
                self.marked.append(name)
        if self.marked:
            log.info("replayed %d file(s), each marked %s", len(self.marked), MARKER)


def _message(inner: FileSource, line: Message) -> Message:
    """The message an error record holds (the line itself when it is not one)."""
    try:
        record = json.loads(line.body)
        body = record.get("body")
        data = body.encode() if isinstance(body, str) else b64decode(record["body_base64"])
        attributes = dict(record.get("attributes") or {})
        attributes.update(rejected_reason=str(record.get("reason", "")), replayed_from=line.id)
        return Message(str(record["message_id"]), data, attributes, (inner, line),
                       line.deliveries)
    except (ValueError, KeyError, TypeError, AttributeError):
        return Message(line.id, line.body, {"replayed_from": line.id}, (inner, line),
                       line.deliveries)


def _by_inner(messages: Sequence[Message]) -> dict[FileSource, list[Message]]:
    out: dict[FileSource, list[Message]] = {}
    for m in messages:
        inner, line = m.handle
        out.setdefault(inner, []).append(line)
    return out


def expand(url: str) -> tuple[UrlStore | None, list[str]]:
    """The record files of a file, prefix, directory or glob (markers left out)."""
    if is_url(url):
        store: UrlStore | None = UrlStore(url, _WHERE)
        assert store is not None
        files = store.expand(url)
    else:
        store = None
        try:
            files = FileSource._expand(local_path(url))
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("source 'file' option 'path'", _WHERE)) from None
    return store, [f for f in files if not f.endswith(MARKER)]


def _open(store: UrlStore | None, name: str) -> IO[bytes]:
    if store is not None:
        return store.open_read(name)
    return gzip.open(name, "rb") if name.endswith(".gz") else open(name, "rb")  # type: ignore[return-value]  # noqa: SIM115


def _exists(store: UrlStore | None, name: str) -> bool:
    return store.exists(name) if store is not None else os.path.exists(name)


def _write(store: UrlStore | None, name: str, data: bytes) -> None:
    if store is not None:
        store.write_small(name, data)
        return
    with open(name, "wb") as handle:
        handle.write(data)


def check_record_file(store: UrlStore | None, name: str) -> None:
    """ConfigError unless the first non-blank line of ``name`` is an error-sink record."""
    try:
        with _open(store, name) as handle:
            line = b""
            while not line.strip():
                line = handle.readline()
                if not line:
                    return  # empty: nothing to replay
    except Exception as exc:  # noqa: BLE001 - unreadable: one line, before anything runs
        raise ConfigError(f"{_WHERE}: cannot read {name!r}: {exc}") from None
    try:
        record = json.loads(line)
        ok = isinstance(record, dict) and all(k in record for k in _RECORD_KEYS) and (
            "body" in record or "body_base64" in record)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"{_WHERE}: {name} does not hold error-sink records (JSON lines with "
                          f"message_id, reason and body)")


def count_reasons(urls: Sequence[str], force: bool = False) -> tuple[Counter[str], int, int]:
    """``--dry-run``: (records by reason, files to replay, files skipped for their marker)."""
    reasons: Counter[str] = Counter()
    files = skipped = 0
    for url in urls:
        store, names = expand(url)
        todo = []
        for name in names:
            if not force and _exists(store, name + MARKER):
                skipped += 1
            else:
                check_record_file(store, name)
                todo.append(name)
        for name in todo:
            files += 1
            with _open(store, name) as handle:
                for line in handle:
                    if line.strip():
                        try:
                            reasons[str(json.loads(line).get("reason", ""))] += 1
                        except (ValueError, AttributeError):
                            reasons["(not an error record)"] += 1
    return reasons, files, skipped
