"""Retry timing with a fake sleep: exponential growth, cap, jitter, attempts, abort."""

from __future__ import annotations

import threading

import pytest
from parquet_ingestor.errors import Aborted
from parquet_ingestor.retry import RetryPolicy


class Flaky:
    """Fails ``failures`` times, then returns ``"ok"``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(f"failure {self.calls}")
        return "ok"


def test_delays_grow_exponentially_without_jitter() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=100, jitter=0)
    sleeps: list[float] = []
    assert policy.call(Flaky(5), sleep=sleeps.append) == "ok"
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_delays_capped_by_max_delay() -> None:
    policy = RetryPolicy(attempts=8, base_delay=1, max_delay=5, jitter=0)
    sleeps: list[float] = []
    policy.call(Flaky(7), sleep=sleeps.append)
    assert sleeps == [1, 2, 4, 5, 5, 5, 5]


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("failures", [1, 3, 10])
def test_jitter_bounds(jitter: float, failures: int) -> None:
    policy = RetryPolicy(attempts=20, base_delay=0.2, max_delay=10, jitter=jitter)
    wait = min(10, 0.2 * 2 ** (failures - 1))
    assert policy.delay(failures, rand=lambda: 0.0) == pytest.approx(wait * (1 - jitter))
    assert policy.delay(failures, rand=lambda: 0.999999) == pytest.approx(wait, rel=1e-5)
    for _ in range(200):
        d = policy.delay(failures)
        assert wait * (1 - jitter) - 1e-9 <= d <= wait + 1e-9


def test_jitter_actually_varies() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=10, jitter=1.0)
    assert len({policy.delay(3) for _ in range(50)}) > 1


def test_attempts_honoured_and_last_error_raised() -> None:
    policy = RetryPolicy(attempts=3, base_delay=0.1, jitter=0)
    fn = Flaky(10)
    sleeps: list[float] = []
    retried: list[int] = []
    with pytest.raises(OSError, match="failure 3"):
        policy.call(fn, sleep=sleeps.append, on_retry=lambda n, exc: retried.append(n))
    assert fn.calls == 3
    assert len(sleeps) == 2
    assert retried == [1, 2]


def test_single_attempt_never_sleeps() -> None:
    sleeps: list[float] = []
    with pytest.raises(OSError):
        RetryPolicy(attempts=1).call(Flaky(1), sleep=sleeps.append)
    assert sleeps == []


def test_errors_outside_retry_on_are_not_retried() -> None:
    calls = 0

    def boom() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("x")

    with pytest.raises(KeyError):
        RetryPolicy(attempts=5).call(boom, retry_on=(OSError,), sleep=lambda s: None)
    assert calls == 1


def test_aborted_is_never_retried() -> None:
    calls = 0

    def boom() -> None:
        nonlocal calls
        calls += 1
        raise Aborted("stop")

    with pytest.raises(Aborted):
        RetryPolicy(attempts=5).call(boom, sleep=lambda s: None)
    assert calls == 1


def test_abort_event_set_before_failure_raises_last_error_without_retrying() -> None:
    abort = threading.Event()
    abort.set()
    fn = Flaky(10)
    with pytest.raises(OSError):
        RetryPolicy(attempts=5, base_delay=100).call(fn, abort=abort)
    assert fn.calls == 1


def test_abort_during_wait_stops_retrying() -> None:
    abort = threading.Event()
    fn = Flaky(10)
    retried: list[int] = []

    def on_retry(n: int, exc: BaseException) -> None:
        retried.append(n)
        abort.set()  # the abort arrives while the policy is about to wait 1000 s

    with pytest.raises(Aborted):
        RetryPolicy(attempts=5, base_delay=1000, max_delay=1000).call(
            fn, abort=abort, on_retry=on_retry)
    assert fn.calls == 1
    assert retried == [1]


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base_delay": -1}, {"jitter": 1.5}])
def test_invalid_policy(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
