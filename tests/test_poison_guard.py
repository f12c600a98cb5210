"""PoisonGuard: delivery counts (the source's or the core's), growing delays, bounded memory."""

from __future__ import annotations

import logging

import pytest
from parquet_ingestor import Message, Rejection
from parquet_ingestor.poison import PoisonGuard


def reject(guard: PoisonGuard, *messages: Message) -> tuple[list[str], list[tuple[str, float]]]:
    again, poison, _ = guard.sort([Rejection(m, "ValueError: bad body 'secret'")
                                   for m in messages])
    return [m.id for m in again], [(m.id, d) for m, d in poison]


def test_the_core_counts_rejections_and_delays_grow(caplog: pytest.LogCaptureFixture) -> None:
    guard = PoisonGuard(3, base_delay=1.0, max_delay=5.0)
    bad, ok = Message("bad", b"x"), Message("ok", b"y")
    assert reject(guard, bad) == (["bad"], [])
    assert reject(guard, bad, ok) == (["bad", "ok"], [])
    with caplog.at_level(logging.ERROR):
        assert reject(guard, bad) == ([], [("bad", 1.0)])
        assert reject(guard, bad) == ([], [("bad", 2.0)])
        assert reject(guard, bad) == ([], [("bad", 4.0)])
        assert reject(guard, bad) == ([], [("bad", 5.0)])  # capped
    logged = [r for r in caplog.records if "bad" in r.getMessage()]
    assert len(logged) == 1, "logged once per message"
    assert "secret" not in logged[0].getMessage()  # the reason's head only, no payload
    assert guard.is_poison(bad) and not guard.is_poison(ok)
    assert guard.only_poison([bad]) and not guard.only_poison([bad, ok])
    assert guard.poisoned == 1 and guard.deliveries(bad) == 6
    guard.settled([bad])
    assert guard.poisoned == 0 and guard.deliveries(bad) == 0


def test_the_sources_own_count_wins() -> None:
    guard = PoisonGuard(5)
    assert reject(guard, Message("m", b"", deliveries=4)) == (["m"], [])
    assert reject(guard, Message("m", b"", deliveries=7)) == ([], [("m", 4.0)])
    assert guard.deliveries(Message("m", b"", deliveries=9)) == 9


def test_new_poison_messages_are_counted_once() -> None:
    guard = PoisonGuard(1)
    message = Message("p", b"")
    assert guard.sort([Rejection(message, "bad")])[2] == 1
    assert guard.sort([Rejection(message, "bad")])[2] == 0


def test_no_limit_never_poisons_and_memory_is_bounded() -> None:
    assert reject(PoisonGuard(None), *(Message("m", b"") for _ in range(50)))[1] == []
    guard = PoisonGuard(1, capacity=10)
    reject(guard, *(Message(f"m{i}", b"") for i in range(100)))
    assert guard.poisoned == 10 and len(guard._rejections) == 10
