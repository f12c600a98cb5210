"""Rejected messages given back to the source, remembered by id so their redeliveries are known.

Without an error sink a rejected message is released and the source delivers it again (a file
source up to ``max_deliveries`` times, SQS until its redrive policy moves it to the dead-letter
queue). Remembering the ids lets the pipeline warn once per message, not once per delivery, and
count a redelivery as such, not as a new message. Memory is bounded: past ``limit`` ids the
oldest are forgotten (a forgotten one is merely warned about again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from .message import Message

#: how many released-rejected message ids are remembered (~100 bytes each)
LIMIT = 10_000


class ReleasedRejects:
    """Thread-safe: flush workers remember, the receive loop counts."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._ids)

    def seen(self, message_id: str) -> bool:
        """Was this message rejected and given back before?"""
        with self._lock:
            return message_id in self._ids

    def remember(self, messages: Sequence[Message]) -> None:
        with self._lock:
            for message in messages:
                self._ids[message.id] = None
                self._ids.move_to_end(message.id)
            while len(self._ids) > self.limit:
                self._ids.popitem(last=False)

    def redeliveries(self, messages: Sequence[Message]) -> int:
        """How many of ``messages`` are redeliveries of released rejected ones (cheap when none)."""
        if not self._ids:
            return 0
        with self._lock:
            return sum(1 for message in messages if message.id in self._ids)
