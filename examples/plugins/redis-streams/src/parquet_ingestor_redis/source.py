"""Source ``redis-streams``: entries of one Redis stream, read through a consumer group.

* receive: XREADGROUP ``>`` (entries no consumer has seen), and every ``claim_idle / 2`` an
  XAUTOCLAIM pass that takes over entries idle longer than ``claim_idle`` (their consumer died).
  At start, entries this consumer name already holds (a restart with a fixed ``consumer``) are
  read again first (XREADGROUP ``0``).
* ack: XACK (and XDEL with ``delete``), called by the pipeline only after the file is written.
* nack: the entry stays pending, so it is never lost; with a delay it comes back from this
  process once the delay passed (kept ours meanwhile); without one (``delay=None``) after
  ``claim_idle``, from any consumer, or with ``nack=readd`` it is re-added at the end of the
  stream and the old entry acknowledged. The bookkeeping is the core's
  :class:`~parquet_ingestor.redelivery.HeldMessages`.
* close: every entry this consumer still owns is marked long idle, so the next XAUTOCLAIM of
  any consumer takes it over at once. Consumer names must be unique per process (the default
  HOSTNAME-PID is).

Delivery is at least once: an entry can be written twice (a consumer stalled longer than
``claim_idle``, or died between the write and the XACK), never lost.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from parquet_ingestor import BaseSource, ConfigError, Message
from parquet_ingestor.redelivery import HeldMessages

log = logging.getLogger(__name__)
WHERE = "source 'redis-streams'"
RELEASED_IDLE_MS = 365 * 24 * 3600 * 1000  # "idle for a year": any XAUTOCLAIM takes it


@dataclass(frozen=True, slots=True)
class Entry:
    """What settling a message needs: its entry id, and its fields for ``nack=readd``."""

    id: str
    fields: dict[bytes, bytes]


class RedisStreamsSource(BaseSource):
    """Messages from a Redis stream through a consumer group."""

    def __init__(
        self,
        stream: str,
        url: str = "redis://127.0.0.1:6379/0",
        password: str | None = None,
        group: str = "parquet-ingestor",
        consumer: str | None = None,
        block: float = 2.0,
        count: int = 1000,
        claim_idle: float = 300.0,
        create: bool = True,
        start_id: str = "0",
        field: str = "body",
        delete: bool = False,
        nack: str = "pending",
    ) -> None:
        if not stream:
            raise ConfigError(f"{WHERE} option 'stream' must not be empty")
        if nack not in ("pending", "readd"):
            raise ConfigError(f"{WHERE} option 'nack': {nack!r} is not one of pending, readd")
        if claim_idle <= 0:
            raise ConfigError(f"{WHERE} option 'claim_idle' must be positive")
        try:
            self.client = redis.Redis.from_url(
                url, password=password, socket_timeout=block + 30.0,
                socket_connect_timeout=10.0, health_check_interval=30)
        except ValueError as exc:
            raise ConfigError(f"{WHERE} option 'url': {exc}") from None
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.block = block
        self.count = count
        self.claim_idle = claim_idle
        self.create = create
        self.start_id = start_id
        self.field = field.encode()
        self.delete = delete
        self.nack_mode = nack
        # handed out and not settled, nacked ones waiting for their delay, and the thread that
        # keeps them ours (XCLAIM JUSTID every claim_idle / 3): the core's redelivery helper
        self._held = HeldMessages(self._touch, max(claim_idle / 3.0, 0.01), "redis-lease-keeper")
        self._started = False
        self._history: str | None = "0"  # own pending entries to re-read at start, from this id
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._closed = False

    # ---------------------------------------------------------------- receive

    def receive(self, max_messages: int, timeout: float) -> Sequence[Message]:
        if self._closed:
            return []
        if not self._started:
            self._start()
        out = self._held.due(max_messages)
        if not out and self._history is not None:
            out = self._read_history(max_messages)
        if not out and time.monotonic() >= self._next_claim:
            out = self._claim(max_messages)
        if not out:
            out = self._read_new(max_messages, min(self.block, timeout))
        self._held.lease(out, count=False)  # the core counts deliveries
        return out

    def _start(self) -> None:
        if self.create:
            try:
                self.client.xgroup_create(self.stream, self.group, self.start_id, mkstream=True)
            except redis.ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise ConfigError(f"{WHERE}: cannot create group {self.group!r} on "
                                      f"{self.stream!r}: {exc}") from None
        self._held.start()
        self._started = True

    def _read_history(self, limit: int) -> list[Message]:
        """Entries already delivered to this consumer name (we restarted); once, at start."""
        assert self._history is not None
        entries = self._entries(self._xreadgroup(self._history, limit, None))
        if not entries:
            self._history = None
            return []
        self._history = entries[-1][0]
        return self._messages(entries)

    def _claim(self, limit: int) -> list[Message]:
        """One XAUTOCLAIM step: entries idle longer than claim_idle become ours."""
        reply = self.client.xautoclaim(self.stream, self.group, self.consumer,
                                       int(self.claim_idle * 1000), self._claim_cursor,
                                       count=min(self.count, limit))
        cursor, claimed = _text(reply[0]), reply[1]
        self._claim_cursor = cursor
        if cursor == "0-0":  # a full pass over the pending list: rest until the next one
            self._next_claim = time.monotonic() + min(self.claim_idle / 2.0, 30.0)
        held = {m.id for m in self._held.held()}  # ours, if they ever went idle that long
        fresh = [(_text(i), f) for i, f in claimed if _text(i) not in held]
        if fresh:
            log.info("took over %d entries idle longer than %.1fs", len(fresh), self.claim_idle)
        return self._messages(fresh)

    def _read_new(self, limit: int, wait: float) -> list[Message]:
        block_ms = int(wait * 1000)
        reply = self._xreadgroup(">", limit, block_ms if block_ms > 0 else None)
        return self._messages(self._entries(reply))

    def _xreadgroup(self, start: str, limit: int, block_ms: int | None) -> Any:
        try:
            return self.client.xreadgroup(self.group, self.consumer, {self.stream: start},
                                          count=min(self.count, limit), block=block_ms)
        except redis.ResponseError as exc:
            if str(exc).startswith("NOGROUP"):
                raise ConfigError(f"{WHERE}: stream {self.stream!r} has no group "
                                  f"{self.group!r} (create it, or set create=true)") from None
            raise

    @staticmethod
    def _entries(reply: Any) -> list[tuple[str, dict[bytes, bytes]]]:
        return [(_text(i), f) for _, entries in reply or [] for i, f in entries]

    def _messages(self, entries: list[tuple[str, dict[bytes, bytes]]]) -> list[Message]:
        out: list[Message] = []
        gone: list[str] = []
        for entry_id, fields in entries:
            if not fields:  # deleted from the stream while pending: nothing left to write
                gone.append(entry_id)
                continue
            out.append(Message(entry_id, self._body(fields), {
                "stream": self.stream, "entry_id": entry_id,
                "timestamp_ms": int(entry_id.split("-")[0])}, Entry(entry_id, fields)))
        if gone:
            self.client.xack(self.stream, self.group, *gone)
        return out

    def _body(self, fields: dict[bytes, bytes]) -> bytes:
        if self.field == b"*":
            return json.dumps({k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                               for k, v in fields.items()}, ensure_ascii=False).encode()
        return fields.get(self.field, b"")

    # ---------------------------------------------------------------- settle

    def ack(self, messages: Sequence[Message]) -> None:
        """XACK (and XDEL) after the write; raises as a whole, XACK is safe to repeat."""
        ids = [m.handle.id for m in messages]
        for start in range(0, len(ids), 1000):
            chunk = ids[start:start + 1000]
            pipe = self.client.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *chunk)
            if self.delete:
                pipe.xdel(self.stream, *chunk)
            pipe.execute()
        self._held.settle(messages)

    def nack(self, messages: Sequence[Message], delay: float | None = None) -> None:
        if delay is not None:  # redeliver from here after the delay; kept ours meanwhile
            self._held.nack(messages, delay)
        elif self.nack_mode == "readd":
            self._readd(messages)
        else:  # no longer kept alive, so an XAUTOCLAIM takes it after claim_idle
            self._held.forget(messages)

    def _readd(self, messages: Sequence[Message]) -> None:
        """XADD a copy at the end of the stream and XACK the original, atomically."""
        pipe = self.client.pipeline(transaction=True)
        for message in messages:
            entry: Entry = message.handle
            pipe.xadd(self.stream, entry.fields)  # type: ignore[arg-type]
            pipe.xack(self.stream, self.group, entry.id)
            if self.delete:
                pipe.xdel(self.stream, entry.id)
        pipe.execute()
        self._held.forget(messages)

    def close(self) -> None:
        """Hand back every entry this consumer owns (marked long idle), then disconnect.

        That covers the batches still in flight and the entries nacked without a delay: this
        process will not deliver them any more, so any consumer's next XAUTOCLAIM takes them.
        """
        if self._closed:
            return
        self._closed = True
        self._held.release()  # stops the keeper; the entries are released below
        released = 0
        try:
            if self._started:
                released = self._release_owned()
            if released:
                log.info("released %d unacknowledged entries to the group", released)
        except redis.RedisError as exc:
            log.warning("could not release this consumer's entries (other consumers take them "
                        "after claim_idle): %s", exc)
        finally:
            self.client.close()

    def _release_owned(self) -> int:
        released = 0
        start = "-"
        while True:
            page = self.client.xpending_range(self.stream, self.group, start, "+", 1000,
                                              consumername=self.consumer)
            ids = [_text(p["message_id"]) for p in page]
            if not ids:
                return released
            self.client.xclaim(self.stream, self.group, self.consumer, 0, ids,
                               idle=RELEASED_IDLE_MS, justid=True)
            released += len(ids)
            start = "(" + ids[-1]

    # ---------------------------------------------------------------- leases

    def _touch(self, messages: Sequence[Message]) -> None:
        self.client.xclaim(self.stream, self.group, self.consumer, 0, [m.id for m in messages],
                           justid=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
