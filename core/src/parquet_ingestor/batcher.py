"""The batcher: collects messages until a threshold says flush (bytes, count or age)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import attrgetter
from typing import Any

from .message import Message

_BODY = attrgetter("body")


@dataclass(frozen=True)
class BatchLimits:
    """Flush when any limit is reached. ``max_records=0`` and ``max_age=0`` switch that limit off.

    ``max_records`` counts input messages (what the source delivered), like Firehose records.
    """

    # defaults: the declared --batch-max-* options (settings.declared), one declaration
    max_bytes: int = field(default_factory=lambda: _declared("batch_max_bytes"))
    max_records: int = field(default_factory=lambda: _declared("batch_max_records"))
    max_age: float = field(default_factory=lambda: _declared("batch_max_age"))

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self.max_records < 0 or self.max_age < 0:
            raise ValueError("max_records and max_age must not be negative")


def _declared(name: str) -> Any:
    from .settings import declared

    return declared()[name]


class Batch(list[Message]):
    """A list of messages that knows the bytes of their bodies (counted once, on the way in)
    and when its first message came (the batcher's clock; None: not known)."""

    __slots__ = ("nbytes", "received")

    def __init__(self, messages: list[Message], nbytes: int,
                 received: float | None = None) -> None:
        super().__init__(messages)
        self.nbytes = nbytes
        self.received = received


class Batcher:
    """Not thread-safe: owned by the receive loop, which hands full batches to flush workers."""

    def __init__(
        self, limits: BatchLimits, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self._messages: list[Message] = []  # extended in place; copied once by take()
        self._bytes = 0
        self._started: float | None = None

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(
        self, messages: Sequence[Message], sizes: Sequence[int] | None = None
    ) -> list[Batch]:
        """Add messages; return the batches that became full (usually none or one).

        A batch is full once it reaches ``max_bytes`` or ``max_records``, checked after each
        message. The cut points are found with a running sum and a bisection, so a receive of
        a thousand messages costs a few C-level passes, not a Python step per message.
        ``sizes`` are the body lengths when the caller has them already.
        """
        full: list[Batch] = []
        if not messages:
            return full
        if not isinstance(messages, list | tuple):
            messages = list(messages)
        max_bytes, max_records = self.limits.max_bytes, self.limits.max_records
        if self._started is None:
            self._started = self.clock()
        # ends[i] = bytes of messages[:i]
        ends = list(accumulate(map(len, map(_BODY, messages)) if sizes is None else sizes,
                               initial=0))
        count, pos = len(messages), 0
        while pos < count:
            # first end whose bytes (with what is buffered) reach max_bytes
            stop = bisect_left(ends, max_bytes - self._bytes + ends[pos], pos + 1)
            if max_records:
                stop = min(stop, pos + max_records - len(self._messages))
            stop = min(stop, count)
            self._messages.extend(messages[pos:stop])
            self._bytes += ends[stop] - ends[pos]
            pos = stop
            if self._bytes >= max_bytes or (max_records and len(self._messages) >= max_records):
                full.append(self.take())
                self._started = self.clock()
        if not self._messages:
            self._started = None
        return full

    def due(self) -> bool:
        """True when the oldest message has waited ``max_age``."""
        return bool(self._messages) and self.time_left() <= 0

    @property
    def started(self) -> float | None:
        """When the oldest buffered message came (None: empty)."""
        return self._started if self._messages else None

    def time_left(self) -> float:
        """Seconds until the age limit fires (infinity when empty or the limit is off)."""
        if self._started is None or not self.limits.max_age:
            return float("inf")
        return self._started + self.limits.max_age - self.clock()

    def take(self) -> Batch:
        """Everything buffered, emptying the batcher."""
        batch = Batch(self._messages, self._bytes, self._started)
        self._messages, self._bytes, self._started = [], 0, None
        return batch
