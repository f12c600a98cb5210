"""Batcher thresholds: bytes, record count and age (with a fake clock)."""

from __future__ import annotations

import pytest
from parquet_ingestor.batcher import Batcher, BatchLimits
from parquet_ingestor.message import Message


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def msgs(n: int, size: int = 10, start: int = 0) -> list[Message]:
    return [Message(str(start + i), b"x" * size) for i in range(n)]


def test_byte_threshold_flushes_on_reaching_it() -> None:
    b = Batcher(BatchLimits(max_bytes=100, max_records=0, max_age=0))
    assert b.add(msgs(9)) == []
    assert len(b) == 9 and b.bytes == 90
    full = b.add(msgs(1, start=9))
    assert len(full) == 1 and [m.id for m in full[0]] == [str(i) for i in range(10)]
    assert len(b) == 0 and b.bytes == 0


def test_record_threshold() -> None:
    b = Batcher(BatchLimits(max_bytes=10**9, max_records=3, max_age=0))
    full = b.add(msgs(7))
    assert [[m.id for m in batch] for batch in full] == [["0", "1", "2"], ["3", "4", "5"]]
    assert [m.id for m in b.take()] == ["6"]


def test_add_returns_several_full_batches_by_bytes() -> None:
    b = Batcher(BatchLimits(max_bytes=25, max_age=0))
    full = b.add(msgs(10))  # 10 bytes each: full at 30 bytes -> 3 per batch
    assert [len(batch) for batch in full] == [3, 3, 3]
    assert len(b) == 1
    # nothing lost or duplicated
    ids = [m.id for batch in full for m in batch] + [m.id for m in b.take()]
    assert ids == [str(i) for i in range(10)]


def test_single_huge_message_is_its_own_batch() -> None:
    b = Batcher(BatchLimits(max_bytes=100, max_age=0))
    full = b.add([Message("big", b"x" * 1000)])
    assert [[m.id for m in batch] for batch in full] == [["big"]]
    assert len(b) == 0


def test_age_threshold_with_fake_clock() -> None:
    clock = FakeClock()
    b = Batcher(BatchLimits(max_bytes=10**9, max_age=30.0), clock=clock)
    assert b.time_left() == float("inf")  # empty
    assert not b.due()
    b.add(msgs(1))
    assert b.time_left() == pytest.approx(30.0)
    clock.now += 10
    b.add(msgs(1, start=1))  # age counts from the oldest message, not the newest
    assert b.time_left() == pytest.approx(20.0)
    assert not b.due()
    clock.now += 19.5
    assert not b.due()
    clock.now += 0.5
    assert b.due()
    assert b.time_left() <= 0
    assert [m.id for m in b.take()] == ["0", "1"]
    assert not b.due()
    assert b.time_left() == float("inf")


def test_age_restarts_after_a_full_batch() -> None:
    clock = FakeClock()
    b = Batcher(BatchLimits(max_bytes=10**9, max_records=2, max_age=30.0), clock=clock)
    b.add(msgs(1))
    clock.now += 25
    full = b.add(msgs(2, start=1))  # "0","1" full; "2" left, its age starts now
    assert [[m.id for m in batch] for batch in full] == [["0", "1"]]
    assert b.time_left() == pytest.approx(30.0)


def test_age_limit_off() -> None:
    clock = FakeClock()
    b = Batcher(BatchLimits(max_bytes=10**9, max_age=0), clock=clock)
    b.add(msgs(3))
    clock.now += 10**6
    assert b.time_left() == float("inf")
    assert not b.due()


def test_exact_batch_leaves_batcher_empty_and_timerless() -> None:
    clock = FakeClock()
    b = Batcher(BatchLimits(max_bytes=10**9, max_records=2, max_age=5), clock=clock)
    full = b.add(msgs(2))
    assert len(full) == 1 and len(b) == 0
    assert b.time_left() == float("inf")


def test_take_empties() -> None:
    b = Batcher(BatchLimits())
    b.add(msgs(2))
    assert len(b.take()) == 2
    assert b.take() == []
    assert b.bytes == 0


@pytest.mark.parametrize("kwargs", [{"max_bytes": 0}, {"max_records": -1}, {"max_age": -1}])
def test_invalid_limits(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BatchLimits(**kwargs)  # type: ignore[arg-type]


def test_batches_carry_their_byte_count_and_sizes_given_are_used() -> None:
    b = Batcher(BatchLimits(max_bytes=100, max_records=0, max_age=0))
    mixed = [Message(str(i), b"y" * (i + 1)) for i in range(17)]  # 1..17 bytes
    full = b.add(mixed)
    assert [m.id for m in full[0]] == [str(i) for i in range(14)]  # 1+..+14 = 105 >= 100
    assert full[0].nbytes == 105 == sum(len(m.body) for m in full[0])
    rest = b.take()
    assert len(full) == 1 and isinstance(rest, list)
    assert rest.nbytes == 15 + 16 + 17 == sum(len(m.body) for m in rest)
    # sizes the caller measured already are trusted (here: each "weighs" 50)
    full = b.add(msgs(3), sizes=[50, 50, 50])
    assert len(full) == 1 and len(full[0]) == 2 and full[0].nbytes == 100
    assert b.bytes == 50
