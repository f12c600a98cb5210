"""HeldMessages: the one bookkeeping of redelivering sources (the file source, MemorySource, the
Redis example and the source template use it)."""

from __future__ import annotations

import threading

from parquet_ingestor import Message
from parquet_ingestor.redelivery import HeldMessages


def test_lease_settle_nack_due_release_and_counts() -> None:
    held = HeldMessages()
    a, b, c = (Message(x, b"") for x in "abc")
    held.lease([a, b, c])
    assert [m.deliveries for m in (a, b, c)] == [1, 1, 1] and len(held) == 3
    held.settle([a])
    held.nack([b], 0)
    held.nack([c], 60)
    assert held.due(10) == [b] and b.deliveries == 2
    assert held.due(10) == [] and 59 < (held.next_due() or 0) <= 60
    assert {m.id for m in held.held()} == {"b", "c"}
    own = Message("d", b"", deliveries=5)  # the source's own count is kept and grows
    held.lease([own], count=False)
    held.nack([own], 0)
    assert held.due(1) == [own] and own.deliveries == 6
    assert sorted(m.id for m in held.release()) == ["b", "c", "d"] and len(held) == 0


def test_renewal_thread_renews_what_is_held_and_stops_at_release() -> None:
    renewed: list[list[str]] = []
    done = threading.Event()

    def renew(messages: list[Message]) -> None:
        renewed.append(sorted(m.id for m in messages))
        done.set()

    held = HeldMessages(renew, renew_every=0.01)
    held.lease([Message("x", b"")])
    held.nack([Message("y", b"")], 60)  # waiting for its delay: still ours, still renewed
    held.start()
    assert done.wait(10)
    assert renewed[0] == ["x", "y"]
    held.release()  # joins the thread: no renewal can follow a release (it would undo it)
    assert held._thread is not None and not held._thread.is_alive()


def test_uncounted_lease_takes_any_iterable_and_waiting_lists_nacked_in_due_order() -> None:
    held = HeldMessages()
    a, b, c = (Message(x, b"") for x in "abc")
    held.lease(iter([a, b, c]), count=False)  # a generator, not only a list
    assert [m.deliveries for m in (a, b, c)] == [None, None, None] and len(held) == 3
    held.nack([c], 60)
    held.nack([b], 30)
    assert held.waiting() == [b, c]
    held.settle(iter([a]))
    assert sorted(m.id for m in held.held()) == ["b", "c"]


def test_uncounted_leases_settle_forget_and_release_alongside_counted_ones() -> None:
    """Uncounted leases are kept by object (the file source's fast path), counted ones by id:
    every operation sees both, and a nacked uncounted message is leased again once due."""
    held = HeldMessages()
    lines = [Message(f"f:{i}", b"{}") for i in range(6)]
    counted = Message("q", b"{}")
    held.lease(lines, count=False)
    held.lease([counted])
    assert len(held) == 7
    held.settle(lines[:2])  # acked: gone
    held.nack([lines[2]], 0)  # given back, due at once, then leased again (by id)
    assert held.due(5) == [lines[2]] and lines[2].deliveries == 2
    held.forget([lines[3]])
    assert sorted(m.id for m in held.held()) == ["f:2", "f:4", "f:5", "q"]
    held.settle([lines[2], counted])
    assert sorted(m.id for m in held.held()) == ["f:4", "f:5"] and len(held) == 2
    assert sorted(m.id for m in held.release()) == ["f:4", "f:5"] and len(held) == 0
