"""Keeping entries leased: a thread that resets their idle time while this process holds them.

In a consumer group an entry stays *pending* (owned by its consumer) until XACK. Other
consumers take over entries idle longer than ``claim_idle`` (XAUTOCLAIM): that is how a dead
consumer's entries get processed. A live consumer may hold an entry for minutes while its batch
fills, so this thread re-claims its own entries for itself (XCLAIM ... JUSTID, which resets the
idle time) every ``claim_idle / 3``, the way an SQS consumer extends a visibility timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Calls ``touch(ids)`` with the ids ``held()`` returns, every ``interval`` seconds."""

    def __init__(self, interval: float, held: Callable[[], Sequence[str]],
                 touch: Callable[[Sequence[str]], None]) -> None:
        self.interval = interval
        self.held = held
        self.touch = touch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="redis-lease-keeper",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            ids = list(self.held())
            if not ids:
                continue
            try:
                for start in range(0, len(ids), 1000):
                    self.touch(ids[start:start + 1000])
            except Exception as exc:  # noqa: BLE001 - retried next round; worst case a duplicate
                log.warning("could not extend %d leases: %s", len(ids), exc)
