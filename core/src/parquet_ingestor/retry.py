"""Retry policies: exponential backoff with jitter, separately for writes and acks."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import Aborted

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits grow ``base_delay * 2**n`` up to ``max_delay``.

    ``jitter`` is the fraction of each wait that is randomised (0 = exact, 1 = "full jitter"),
    so many workers failing together do not retry in lockstep.
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("delays must be >= 0 and jitter within 0..1")

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """The wait after the ``failures``-th failure (1-based)."""
        wait = min(self.max_delay, self.base_delay * (2 ** (failures - 1)))
        return float(wait * (1 - self.jitter) + wait * self.jitter * rand())

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str = "operation",
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        sleep: Callable[[float], object] = time.sleep,
        on_retry: Callable[[int, BaseException], object] | None = None,
        abort: threading.Event | None = None,
    ) -> T:
        """Run ``fn`` until it succeeds or the attempts are used up (then the last error is raised).

        ``abort`` set stops retrying at once with :class:`Aborted`.
        """
        failures = 0
        while True:
            try:
                return fn()
            except Aborted:
                raise
            except retry_on as exc:
                failures += 1
                if failures >= self.attempts or (abort is not None and abort.is_set()):
                    raise
                wait = self.delay(failures)
                log.warning("%s failed (attempt %d of %d), retrying in %.2fs: %s",
                            what, failures, self.attempts, wait, exc)
                if on_retry is not None:
                    on_retry(failures, exc)
                if abort is not None:
                    if abort.wait(wait):
                        raise Aborted(f"{what}: aborted while retrying") from exc
                else:
                    sleep(wait)
