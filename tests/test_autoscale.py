"""The autoscaler's decisions, on a fake clock and scripted samples (no threads, no sleeps)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

import pytest
from parquet_ingestor.autoscale import (
    AutoscalePolicy,
    Autoscaler,
    Sample,
    SourcePollers,
)
from parquet_ingestor.memory import MemoryLimit, rss

POLICY = AutoscalePolicy(interval=1.0, up_cooldown=1.0, down_cooldown=3.0, poller_cooldown=5.0,
                         hold=10.0)
MB = 1 << 20


class Knob:
    """A Resizable that records every resize."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sizes = [size]

    def resize(self, n: int) -> int:
        self.size = n
        self.sizes.append(n)
        return n


class Run:
    """Scripted run: each ``tick`` advances the fake clock one interval, adds what happened
    in it to the cumulative counters, and lets the autoscaler decide."""

    def __init__(self, workers: int = 1, bounds: tuple[int, int] = (1, 8),
                 pollers: int | None = None, poller_bounds: tuple[int, int] = (1, 8),
                 policy: AutoscalePolicy = POLICY) -> None:
        self.now = 0.0
        self.total = Sample()
        self.workers = Knob(workers)
        self.pollers = Knob(pollers) if pollers is not None else None
        self.counts: Counter[str] = Counter()
        self.scaler = Autoscaler(policy, lambda: self.total, workers=self.workers,
                                 worker_bounds=bounds, pollers=self.pollers,
                                 poller_bounds=poller_bounds, clock=lambda: self.now, cpus=2.0,
                                 count=lambda name: self.counts.update([name]))
        self.scaler.step()  # the baseline sample

    def tick(self, *, backlog: float = 0.0, flushed: float = 0.0, cpu: float = 0.2,
             memory: float = 0.0, starved: float = 0.0, received: float = 0.0,
             busy: float | None = None) -> list[tuple[str, int, int]]:
        """One interval: ``backlog``/``starved`` are shares of it, ``flushed`` MB/s, ``cpu``
        CPUs in use, ``busy`` workers busy (default: all)."""
        t = self.total
        self.now += 1.0
        self.total = Sample(
            cpu_seconds=t.cpu_seconds + cpu, flushed_bytes=t.flushed_bytes + flushed * MB,
            received=t.received + received, backlog_seconds=t.backlog_seconds + backlog,
            starved_seconds=t.starved_seconds + starved,
            busy_seconds=t.busy_seconds + (self.workers.size if busy is None else busy),
            memory=memory)
        return [(d.target, d.old, d.new) for d in self.scaler.step()]


def slow_sink(run: Run, ticks: int, per_worker: float = 10.0) -> None:
    """A sink whose commits are slow: the flush rate grows with the workers, the queue stays
    full, CPU stays low."""
    for _ in range(ticks):
        run.tick(backlog=1.0, flushed=per_worker * run.workers.size, cpu=0.1)


def test_workers_grow_on_a_backed_up_queue_and_double_while_each_step_pays(
        caplog: pytest.LogCaptureFixture) -> None:
    run = Run(workers=1, bounds=(1, 8))
    with caplog.at_level(logging.INFO, "parquet_ingestor"):
        assert run.tick(backlog=1.0, flushed=10, cpu=0.1) == [("workers", 1, 2)]
        slow_sink(run, 4)
    assert run.workers.sizes == [1, 2, 4, 8]  # each step doubled the rate: the next doubles
    assert run.counts["workers_scaled_up"] == 3
    ups = [r for r in caplog.records if "autoscale: workers" in r.message]
    assert all(r.levelno == logging.INFO for r in ups)
    assert "flush queue full 100%" in ups[0].message and "CPU 5% of 2 CPUs" in ups[0].message


def test_a_step_that_does_not_raise_throughput_is_undone_and_held_off(
        caplog: pytest.LogCaptureFixture) -> None:
    """A transformer holding the GIL: the queue is full, CPU sits at one core of two, and a
    second worker only contends: the flush rate stays flat."""
    run = Run(workers=1, bounds=(1, 8))
    with caplog.at_level(logging.INFO, "parquet_ingestor"):
        assert run.tick(backlog=1.0, flushed=30, cpu=1.0) == [("workers", 1, 2)]
        assert run.tick(backlog=1.0, flushed=31, cpu=1.05) == []  # one interval: not yet
        assert run.tick(backlog=1.0, flushed=30, cpu=1.05) == [("workers", 2, 1)]
    down = caplog.records[-1]
    assert down.levelno == logging.WARNING
    assert "did not raise throughput" in down.message and "GIL" in down.message
    assert run.counts == Counter(workers_scaled_up=1, workers_scaled_down=1)
    # held at one worker for `hold` seconds, however backed up
    for _ in range(9):
        assert run.tick(backlog=1.0, flushed=30, cpu=1.0) == []
    assert run.tick(backlog=1.0, flushed=30, cpu=1.0) == [("workers", 1, 2)]  # tried again


def test_a_step_is_judged_against_the_steady_rate_and_may_need_two_intervals() -> None:
    run = Run(workers=1, bounds=(1, 8), policy=replace(POLICY, up_cooldown=4.0))
    for flushed in (20, 40, 30):  # noisy, backlog not yet: 30 MB/s on average
        assert run.tick(backlog=0.2, flushed=flushed, cpu=1.0) == []
    assert run.tick(backlog=1.0, flushed=30, cpu=1.0) == [("workers", 1, 2)]
    assert run.tick(backlog=1.0, flushed=33, cpu=1.1) == []  # +10%, not enough yet
    assert run.tick(backlog=1.0, flushed=45, cpu=1.3) == []  # +30% over both: kept
    assert run.workers.size == 2


def test_a_step_judged_while_the_machine_got_busier_is_tried_again_soon(
        caplog: pytest.LogCaptureFixture) -> None:
    """Other processes took the CPU in the window after the step: the rate fell with the
    process's CPU, which says nothing about contention."""
    run = Run(workers=1, bounds=(1, 8))
    with caplog.at_level(logging.INFO, "parquet_ingestor"):
        assert run.tick(backlog=1.0, flushed=30, cpu=1.0) == [("workers", 1, 2)]
        assert run.tick(backlog=1.0, flushed=12, cpu=0.4) == []
        assert run.tick(backlog=1.0, flushed=12, cpu=0.4) == [("workers", 2, 1)]
    assert "busier machine" in caplog.records[-1].message
    assert run.tick(backlog=1.0, flushed=12, cpu=0.4) == []
    assert run.tick(backlog=1.0, flushed=12, cpu=0.4) == []
    assert run.tick(backlog=1.0, flushed=12, cpu=0.4) == [("workers", 1, 2)]  # after 3 s


def test_no_growth_at_the_cpu_target_and_shrinking_well_above_it() -> None:
    run = Run(workers=3, bounds=(1, 8))
    assert run.tick(backlog=1.0, flushed=30, cpu=1.7) == []  # 85% of 2 CPUs: at target
    assert run.tick(backlog=1.0, flushed=30, cpu=1.7) == []
    assert run.tick(backlog=1.0, flushed=30, cpu=1.95) == [("workers", 3, 2)]  # 97%
    assert run.tick(backlog=1.0, flushed=30, cpu=1.95) == []  # down cooldown (3 s)
    assert run.tick(backlog=1.0, flushed=30, cpu=1.95) == []
    assert run.tick(backlog=1.0, flushed=30, cpu=1.95) == [("workers", 2, 1)]
    assert run.tick(backlog=1.0, flushed=30, cpu=1.95) == []  # never below min_workers
    assert run.workers.size == 1


def test_memory_pressure_shrinks_fast_and_stops_growth(caplog: pytest.LogCaptureFixture) -> None:
    run = Run(workers=8, bounds=(2, 8))
    with caplog.at_level(logging.INFO, "parquet_ingestor"):
        assert run.tick(backlog=1.0, flushed=80, memory=0.95) == [("workers", 8, 4)]
        assert run.tick(backlog=1.0, flushed=40, memory=0.93) == [("workers", 4, 2)]
        assert run.tick(backlog=1.0, flushed=20, memory=0.99) == []  # at min_workers
    assert all(r.levelno == logging.WARNING and "memory at 9" in r.message
               for r in caplog.records if "autoscale" in r.message)
    assert run.counts["workers_scaled_down"] == 2
    assert run.tick(backlog=1.0, flushed=20, memory=0.85) == []  # above target: no growth
    assert run.tick(backlog=1.0, flushed=20, memory=0.5) == [("workers", 2, 4)]


def test_idle_workers_are_retired_slowly() -> None:
    run = Run(workers=4, bounds=(1, 8))
    assert run.tick(flushed=5, busy=1.0) == []
    assert run.tick(flushed=5, busy=1.0) == []
    assert run.tick(flushed=5, busy=1.0) == [("workers", 4, 3)]
    assert run.tick(flushed=5, busy=1.0) == []  # cooldown again
    assert run.tick(flushed=5, busy=2.5) == []  # busy enough: the idle clock restarts


def test_cooldown_and_bounds() -> None:
    policy = replace(POLICY, up_cooldown=3.0)
    run = Run(workers=1, bounds=(1, 3), policy=policy)
    assert run.tick(backlog=1.0, flushed=10) == [("workers", 1, 2)]
    assert run.tick(backlog=1.0, flushed=20) == []  # judged a success, but cooling down
    assert run.tick(backlog=1.0, flushed=20) == []
    assert run.tick(backlog=1.0, flushed=20) == [("workers", 2, 3)]  # doubling capped at max
    slow_sink(run, 5)
    assert max(run.workers.sizes) == 3


def test_a_half_full_queue_is_not_a_backlog() -> None:
    run = Run(workers=2)
    for _ in range(5):
        assert run.tick(backlog=0.3, flushed=20) == []


def test_pollers_grow_when_batches_wait_for_input_and_are_undone_when_it_does_not_pay(
        caplog: pytest.LogCaptureFixture) -> None:
    run = Run(workers=2, bounds=(2, 2), pollers=2, poller_bounds=(1, 4))
    with caplog.at_level(logging.INFO, "parquet_ingestor"):
        # nothing arrives: an empty queue is no reason to poll harder (and the pollers'
        # cooldown runs from the start)
        for _ in range(5):
            assert run.tick(starved=1.0, received=0) == []
        # messages arrive, batches wait for them, the flush queue is calm
        assert run.tick(starved=0.9, received=800, flushed=1) == [("pollers", 2, 3)]
        assert run.tick(starved=0.6, received=1200, flushed=1) == []  # +50%: kept
        # cooldown: a poller at most every poller_cooldown seconds
        for _ in range(3):
            assert run.tick(starved=0.9, received=1200, flushed=1) == []
        assert run.tick(starved=0.9, received=1200, flushed=1) == [("pollers", 3, 4)]
        assert run.tick(starved=0.9, received=1210, flushed=1) == []
        assert run.tick(starved=0.9, received=1190, flushed=1) == [("pollers", 4, 3)]
    assert "input is not limited by polling" in caplog.records[-1].message
    assert run.counts == Counter(pollers_scaled_up=2, pollers_scaled_down=1)


def test_pollers_shrink_when_the_flush_queue_is_under_pressure() -> None:
    run = Run(workers=2, bounds=(2, 2), pollers=3, poller_bounds=(1, 4))
    for _ in range(4):
        assert run.tick(backlog=1.0, received=1000, flushed=10) == []  # poller cooldown
    assert run.tick(backlog=1.0, received=1000, flushed=10) == [("pollers", 3, 2)]


def test_workers_and_pollers_do_not_change_in_the_same_step() -> None:
    run = Run(workers=1, bounds=(1, 4), pollers=2, poller_bounds=(1, 4))
    # the workers' probe is pending: the pollers wait for its verdict
    assert run.tick(backlog=1.0, flushed=10) == [("workers", 1, 2)]
    assert run.pollers is not None and run.pollers.sizes == [2]


def test_memory_pressure_signal() -> None:
    assert MemoryLimit(None).pressure() == 0.0
    resident = rss()
    assert resident > 10 * MB  # this interpreter, read from /proc/self/statm
    assert 0.4 < MemoryLimit(2 * resident).pressure() < 0.6


def test_sources_opt_in_to_poller_autoscaling() -> None:
    class Fixed:
        pollers = 2

    class Auto(Fixed):
        poller_bounds = (1, 6)

        def resize_pollers(self, n: int) -> int:
            self.pollers = min(n, 5)
            return self.pollers

    assert SourcePollers.of(Fixed()) is None
    assert SourcePollers.of(object()) is None
    pollers = SourcePollers.of(Auto())
    assert pollers is not None and pollers.bounds == (1, 6) and pollers.size == 2
    assert pollers.resize(6) == 5 and pollers.size == 5
