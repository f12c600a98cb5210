"""Held messages: the bookkeeping every redelivering source needs, in one place.

A source hands messages out (``lease``), settles them (``settle`` on ack), gives them back
(``nack`` with a delay: they wait here until ``due``), keeps its leases alive while it holds them
(``renew`` is called every ``renew_every`` seconds from a thread with what is ``held``), and at
``close`` takes back everything still held (``release``). It also counts deliveries for sources
whose system does not (the count goes into :attr:`Message.deliveries`).

Used by the built-in file source, :class:`~parquet_ingestor.testing.MemorySource`, the Redis
streams example and the ``ingest new-plugin --kind source`` template. Threads: every method is
safe from any thread (``receive`` on one, ``ack``/``nack`` on the flush workers).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter

from .message import Message

log = logging.getLogger(__name__)
_ID = attrgetter("id")


class HeldMessages:
    """Messages handed out and not settled, and nacked ones waiting for their delay.

    ``renew(messages)`` extends the leases of held messages in the source's system (SQS
    ChangeMessageVisibility, Redis XCLAIM JUSTID...); it runs on a background thread started by
    :meth:`start`, every ``renew_every`` seconds (pick a third of the lease length). A failing
    renewal is logged and retried next round (worst case: a duplicate, never a loss).
    """

    def __init__(self, renew: Callable[[Sequence[Message]], None] | None = None,
                 renew_every: float = 10.0, name: str = "lease-renewal") -> None:
        self._lock = threading.Lock()
        self._leased: dict[str, Message] = {}  # counted leases, by id (a redelivery may be
        # a new object with the same id)
        #: uncounted leases (``lease(count=False)``), by the object itself: a set of objects
        #: that hash by identity is filled and emptied in C (a dict by id cost ~0.2 us a
        #: message on the file source's receive thread, most of it probing past deleted keys)
        self._objects: set[Message] = set()
        self._waiting: list[tuple[float, int, Message]] = []  # (due, tiebreak, message) heap
        self._tiebreak = itertools.count()
        self._deliveries: dict[str, int] = {}
        self._renew = renew
        self.renew_every = renew_every
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- bookkeeping

    def lease(self, messages: Iterable[Message], count: bool = True) -> None:
        """Record messages as handed out; ``count`` adds one delivery to those whose source
        left :attr:`Message.deliveries` unset. Without ``count`` it costs no Python work per
        message (the file source leases every line it reads)."""
        if not count:
            with self._lock:
                self._objects.update(messages)
            return
        with self._lock:
            for message in messages:
                self._leased[message.id] = message
                if count:
                    n = self._deliveries.get(message.id, 0) + 1
                    self._deliveries[message.id] = n
                    if message.deliveries is None or message.deliveries < n:
                        message.deliveries = n

    def settle(self, messages: Iterable[Message]) -> None:
        """Forget messages for good (acked). C-level loops: this runs on every ack."""
        with self._lock:
            if self._objects:
                self._objects.difference_update(messages)
            if not self._leased and not self._deliveries:
                return
            ids = list(map(_ID, messages))
            deque(map(self._leased.pop, ids, itertools.repeat(None)), maxlen=0)
            if self._deliveries:
                deque(map(self._deliveries.pop, ids, itertools.repeat(None)), maxlen=0)

    def nack(self, messages: Iterable[Message], delay: float | None = 0.0) -> None:
        """Hold messages back until ``delay`` seconds passed (None: at once); :meth:`due` then
        returns them. They count as held meanwhile, so their leases keep being renewed."""
        due = time.monotonic() + (delay or 0.0)
        with self._lock:
            for message in messages:
                self._leased.pop(message.id, None)
                self._objects.discard(message)
                heapq.heappush(self._waiting, (due, next(self._tiebreak), message))

    def due(self, limit: int) -> list[Message]:
        """Up to ``limit`` nacked messages whose delay has passed, oldest due first; they are
        leased again, and :attr:`Message.deliveries` grows by one (a delivery from here)."""
        out: list[Message] = []
        now = time.monotonic()
        with self._lock:
            while self._waiting and len(out) < limit and self._waiting[0][0] <= now:
                message = heapq.heappop(self._waiting)[2]
                message.deliveries = (message.deliveries or 1) + 1
                self._deliveries[message.id] = message.deliveries
                self._leased[message.id] = message
                out.append(message)
        return out

    def next_due(self) -> float | None:
        """Seconds until the next nacked message is due (0: now), or None when none waits."""
        with self._lock:
            if not self._waiting:
                return None
            return max(0.0, self._waiting[0][0] - time.monotonic())

    def held(self) -> list[Message]:
        """Every message handed out and not settled, including nacked ones still waiting."""
        with self._lock:
            return [*self._leased.values(), *self._objects, *(m for _, _, m in self._waiting)]

    def waiting(self) -> list[Message]:
        """The nacked messages still waiting for their delay, oldest due first."""
        with self._lock:
            return [m for _, _, m in sorted(self._waiting)]

    def deliveries(self, message: Message) -> int:
        """How many times this object counted ``message`` as delivered."""
        with self._lock:
            return self._deliveries.get(message.id, 0)

    def forget(self, messages: Iterable[Message]) -> None:
        """Drop messages from every list without settling them (given up on, or released)."""
        messages = list(messages)
        ids = {m.id for m in messages}
        with self._lock:
            self._objects.difference_update(messages)
            for message_id in ids:
                self._leased.pop(message_id, None)
                self._deliveries.pop(message_id, None)
            if any(m.id in ids for _, _, m in self._waiting):
                self._waiting = [w for w in self._waiting if w[2].id not in ids]
                heapq.heapify(self._waiting)

    def release(self) -> list[Message]:
        """Everything still held, removed (at close: the source gives these back). Stops the
        renewal thread first, so no renewal can undo the release."""
        self.stop()
        with self._lock:
            out = [*self._leased.values(), *self._objects,
                   *(m for _, _, m in sorted(self._waiting))]
            self._leased.clear()
            self._objects.clear()
            self._waiting.clear()
            self._deliveries.clear()
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._leased) + len(self._objects) + len(self._waiting)

    # ---------------------------------------------------------------- lease renewal

    def start(self) -> None:
        """Start the renewal thread (no-op without ``renew``, or when already running)."""
        if self._renew is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the renewal thread and wait for a round in progress to finish."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def renew_now(self) -> None:
        """One renewal round, in chunks of 1000 (also what the thread runs)."""
        renew = self._renew
        held = self.held()
        if renew is None or not held:
            return
        try:
            for start in range(0, len(held), 1000):
                renew(held[start:start + 1000])
        except Exception as exc:  # noqa: BLE001 - retried next round; worst case a duplicate
            log.warning("could not renew %d leases: %s", len(held), exc)

    def _run(self) -> None:
        while not self._stop.wait(self.renew_every):
            self.renew_now()
