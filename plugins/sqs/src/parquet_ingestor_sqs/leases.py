"""Leases: the bookkeeping of every message received and not yet settled (acked or nacked).

A :class:`Lease` is the handle of a :class:`~parquet_ingestor.message.Message`. The
:class:`LeaseTable` keeps leases ordered by when their visibility lapses, so the lease thread
finds the ones to extend by looking at the front only, and it bounds how many are in flight.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence


class Lease:
    """One received message: its receipt handle, and until when SQS keeps it invisible.

    Times are ``time.monotonic()`` seconds. ``settled`` turns True once the message is acked,
    nacked or released, after which the lease thread never touches it again.
    """

    __slots__ = ("receipt_handle", "message_id", "received_at", "deadline", "settled", "size",
                 "receives")

    def __init__(self, receipt_handle: str, message_id: str, received_at: float, deadline: float,
                 receives: int | None = None):
        self.receipt_handle = receipt_handle
        self.message_id = message_id
        self.received_at = received_at
        self.deadline = deadline
        self.settled = False
        self.size = 0  # body bytes, for the in-flight byte limit
        # ApproximateReceiveCount of the latest delivery held (None when SQS did not say)
        self.receives = receives

    def __repr__(self) -> str:
        state = "settled" if self.settled else f"deadline={self.deadline:.1f}"
        return f"Lease({self.message_id}, {state})"


class LeaseTable:
    """Thread-safe set of unsettled leases, ordered by deadline, with an in-flight limit.

    Pollers :meth:`reserve` room before each ReceiveMessage call and :meth:`add` what they got,
    so the number of messages in flight never exceeds ``limit``, and polling pauses while their
    bodies hold ``byte_limit`` bytes or more (one ReceiveMessage may overshoot it by its size).
    """

    def __init__(self, limit: int, byte_limit: int = 0) -> None:
        self.limit = limit
        self.byte_limit = byte_limit
        self.bytes = 0
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        # Leases the lease thread keeps extending, oldest deadline first.
        self._active: OrderedDict[Lease, None] = OrderedDict()
        # Leases that can no longer be extended (12-hour cap, lost receipt handle).
        self._final: dict[Lease, None] = {}
        self._reserved = 0
        self._by_id: dict[str, Lease] = {}  # unsettled leases by message id
        self.closed = False

    def __len__(self) -> int:
        return len(self._active) + len(self._final)

    @property
    def in_flight(self) -> int:
        """Leased messages plus room reserved by pollers in a ReceiveMessage call right now."""
        return len(self._active) + len(self._final) + self._reserved

    def reserve(self, most: int, timeout: float) -> int:
        """Wait until there is room, then reserve up to ``most`` slots; 0 on timeout or close."""
        with self._room:
            if not self._room.wait_for(lambda: self.closed or self._free() > 0, timeout):
                return 0
            if self.closed:
                return 0
            n = min(most, self._free())
            self._reserved += n
            return n

    def _free(self) -> int:
        if self.byte_limit and self.bytes >= self.byte_limit:
            return 0
        return self.limit - len(self._active) - len(self._final) - self._reserved

    def add(self, leases: Sequence[Lease], reserved: int) -> bool:
        """Track new leases in place of ``reserved`` slots; False (nothing added) once closed."""
        with self._room:
            self._reserved -= reserved
            if self.closed:
                self._room.notify_all()
                return False
            active, by_id = self._active, self._by_id
            for lease in leases:
                active[lease] = None
                by_id[lease.message_id] = lease
                self.bytes += lease.size
            if len(leases) < reserved:
                self._room.notify_all()
            return True

    def settle(self, leases: Iterable[Lease]) -> int:
        """Forget leases for good (acked, nacked or lost); returns how many were still tracked."""
        n = 0
        with self._room:
            active, final = self._active, self._final
            for lease in leases:
                if lease.settled:
                    continue
                lease.settled = True
                if self._by_id.get(lease.message_id) is lease:
                    del self._by_id[lease.message_id]
                if active.pop(lease, 0) is None or final.pop(lease, 0) is None:
                    n += 1
                    self.bytes -= lease.size
            if n:
                self._room.notify_all()
        return n

    def renew(self, message_id: str, receipt_handle: str, deadline: float,
              receives: int | None = None) -> Lease | None:
        """A message received again while its lease is still held here (the lease lapsed and
        SQS handed it out anew): keep the one lease, with the new receipt handle (only the
        latest one can delete it), deadline and receive count. Returns the lease, or None if
        not held."""
        with self._lock:
            lease = self._by_id.get(message_id)
            if lease is None or lease.settled:
                return None
            lease.receipt_handle = receipt_handle
            lease.deadline = deadline
            if receives is not None:
                lease.receives = receives
            if self._final.pop(lease, 0) is None:  # lost earlier: extend it again
                self._active[lease] = None
            else:
                self._active.move_to_end(lease)
            return lease

    def due(self, before: float, most: int) -> list[Lease]:
        """Active leases whose visibility lapses before ``before``, soonest first (at most ``most``)."""
        out: list[Lease] = []
        with self._lock:
            for lease in self._active:
                if lease.deadline >= before or len(out) >= most:
                    break
                out.append(lease)
        return out

    def extended(self, leases: Iterable[Lease], deadline: float) -> None:
        """Record a successful extension: new deadline, moved to the back of the order."""
        with self._lock:
            active = self._active
            for lease in leases:
                if lease in active:
                    lease.deadline = deadline
                    active.move_to_end(lease)

    def finalize(self, leases: Iterable[Lease]) -> None:
        """Stop extending these leases but keep them in flight until they are settled."""
        with self._lock:
            for lease in leases:
                if self._active.pop(lease, 0) is None:
                    self._final[lease] = None

    def close(self) -> list[Lease]:
        """Refuse new leases and settle every tracked one; returns them (to release)."""
        with self._room:
            self.closed = True
            leases = [*self._active, *self._final]
            self._active.clear()
            self._final.clear()
            self._by_id.clear()
            self.bytes = 0
            for lease in leases:
                lease.settled = True
            self._room.notify_all()
        return leases
