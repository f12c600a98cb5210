"""Rejected messages given back to the source, remembered by id; poison ones held off.

Remembering the ids lets the pipeline warn once per message, not once per delivery, and count a
redelivery as such, not as a new message. Poison messages are ones rejected again and again,
which must not loop forever.

A message's delivery count is the source's own (:attr:`Message.deliveries`: SQS
ApproximateReceiveCount, Redis times_delivered) or else the core's count of its rejections in
this run. Once a rejected message reached ``--max-deliveries``, and there is no error sink to
put it in, the :class:`PoisonGuard` says to give it back with a growing delay, logs it once,
and remembers it: its redeliveries do not count as activity for ``--exit-when-idle``, and the
run reports it and exits 1. Memory is bounded: at most ``capacity`` ids are remembered.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from .message import Message, Rejection

log = logging.getLogger(__name__)

BASE_DELAY = 1.0  # seconds before the first redelivery of a poison message; doubles each time
MAX_DELAY = 300.0


class PoisonGuard:
    """Counts rejections per message id and sorts rejected messages into retry and poison.

    Threads: called from the flush workers and the receive loop; every method locks.
    """

    def __init__(self, max_deliveries: int | None, capacity: int = 100_000,
                 base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY) -> None:
        self.max_deliveries = max_deliveries
        self.capacity = capacity
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._rejections: OrderedDict[str, int] = OrderedDict()
        self._poison: OrderedDict[str, None] = OrderedDict()

    def deliveries(self, message: Message) -> int:
        """The source's delivery count when it has one, else this run's rejections of it."""
        with self._lock:
            counted = self._rejections.get(message.id, 0)
        return max(message.deliveries or 0, counted)

    def sort(self, rejections: Sequence[Rejection]) -> tuple[list[Message],
                                                             list[tuple[Message, float]], int]:
        """Count one more rejection of each message; return (messages to give back as usual,
        poison messages with their redelivery delay, how many of those are new). Logs each
        poison message once."""
        again: list[Message] = []
        poison: list[tuple[Message, float]] = []
        new = 0
        limit = self.max_deliveries
        with self._lock:
            for rejection in rejections:
                message = rejection.message
                counted = self._rejections.pop(message.id, 0) + 1
                self._rejections[message.id] = counted
                deliveries = max(message.deliveries or 0, counted)
                if limit is None or deliveries < limit:
                    again.append(message)
                    continue
                delay = min(self.max_delay, self.base_delay * 2.0 ** min(deliveries - limit, 30))
                poison.append((message, delay))
                if message.id not in self._poison:
                    self._poison[message.id] = None
                    new += 1
                    log.error("message %s rejected on delivery %d (--max-deliveries %d) and "
                              "there is no error sink: it goes back to the source with growing "
                              "delays and the run will exit 1; last reason: %s",
                              message.id, deliveries, limit, _head(rejection.reason))
            while len(self._rejections) > self.capacity:
                self._rejections.popitem(last=False)
            while len(self._poison) > self.capacity:
                self._poison.popitem(last=False)
        return again, poison, new

    def __bool__(self) -> bool:
        return bool(self._rejections)

    def seen(self, message_id: str) -> bool:
        """Was this message rejected and given back before, in this run?"""
        with self._lock:
            return message_id in self._rejections

    def remember(self, messages: Sequence[Message]) -> None:
        """Count one rejection of each message, given back without sorting (error sink down)."""
        with self._lock:
            for message in messages:
                self._rejections[message.id] = self._rejections.pop(message.id, 0) + 1
            while len(self._rejections) > self.capacity:
                self._rejections.popitem(last=False)

    def redeliveries(self, messages: Sequence[Message]) -> int:
        """How many of ``messages`` are redeliveries of rejected ones (cheap when none)."""
        if not self._rejections:
            return 0
        with self._lock:
            rejections = self._rejections
            return sum(1 for message in messages if message.id in rejections)

    def is_poison(self, message: Message) -> bool:
        with self._lock:
            return message.id in self._poison

    def only_poison(self, messages: Iterable[Message]) -> bool:
        """True when every message is a known poison message (not activity for idleness)."""
        with self._lock:
            poison = self._poison
            return all(m.id in poison for m in messages)

    def settled(self, messages: Iterable[Message]) -> None:
        """Messages acked (written, or in the error sink): forget them."""
        with self._lock:
            if not self._rejections and not self._poison:
                return
            for message in messages:
                self._rejections.pop(message.id, None)
                self._poison.pop(message.id, None)

    @property
    def poisoned(self) -> int:
        """Poison messages given back and never settled in this run."""
        with self._lock:
            return len(self._poison)


def _head(reason: str) -> str:
    from .logs import reason_summary

    return reason_summary(reason)
