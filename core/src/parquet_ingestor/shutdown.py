"""How ``ingest`` reacts to signals: SIGTERM and SIGHUP drain, a second SIGINT aborts.

Service managers and wrappers deliver one stop request several times: systemd's default
``KillMode=control-group``, ``uv run`` and shell wrappers signal the whole process group, and a
wrapper forwards what it got (``uv run`` forwards SIGINT 200 ms later). So:

* SIGTERM and SIGHUP always mean "drain", however many arrive;
* SIGINT drains the first time; another SIGINT aborts, unless it comes within
  :data:`REPEAT_WINDOW` of the signal that started the drain (then it is the same Ctrl-C,
  delivered twice);
* ``--shutdown-timeout`` bounds a drain: when it expires, the run aborts.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("parquet_ingestor")

#: seconds after the signal that started a drain in which another SIGINT is a duplicate
#: delivery (process group plus a forwarding wrapper), not a request to abort
REPEAT_WINDOW = 1.0
DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

Action = Literal["drain", "abort", "repeat"]


class SignalPolicy:
    """Turns the signals of one run into actions: the first drains, see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.first: int | None = None  # the signal that started the drain
        self.first_at = 0.0
        self.aborting = False

    def classify(self, signum: int) -> Action:
        now = self.clock()
        if self.first is None:
            self.first, self.first_at = signum, now
            return "drain"
        if signum == signal.SIGINT and not self.aborting and now - self.first_at >= REPEAT_WINDOW:
            self.aborting = True
            return "abort"
        return "repeat"

    @property
    def draining(self) -> bool:
        return self.first is not None


def name(signum: int) -> str:
    return signal.Signals(signum).name


def hold_during_start_up(
    on_abort: Callable[[], None],
) -> SignalPolicy:
    """Until the pipeline runs: note a drain request (the run then stops before receiving),
    call ``on_abort`` for an abort. Returns the policy, which the run takes over."""
    policy = SignalPolicy()

    def on_signal(signum: int, frame: Any) -> None:
        if policy.classify(signum) == "abort":
            on_abort()

    for sig in HANDLED:
        signal.signal(sig, on_signal)
    return policy


class Shutdown:
    """Signal handling around ``pipeline.run()``: drain on the first stop request, abort on a
    second SIGINT or when ``timeout`` seconds (0: no limit) of draining have passed."""

    def __init__(self, pipeline: Any, timeout: float | None,
                 policy: SignalPolicy | None = None) -> None:
        self.pipeline = pipeline
        self.timeout = timeout or 0.0
        self.policy = policy or SignalPolicy()
        self._timer: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Shutdown:
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in HANDLED}
        if self.policy.first is not None:
            log.info("%s during start-up: stopping before receiving anything (%s)",
                     name(self.policy.first), self._how_to_abort())
            self._drain()
            if self.policy.aborting:
                self.pipeline.abort()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        action = self.policy.classify(signum)
        if action == "drain":
            log.info("%s: finishing in-flight batches (%s)", name(signum), self._how_to_abort())
            self._drain()
        elif action == "abort":
            log.warning("second SIGINT: aborting, unwritten messages are not acknowledged")
            self.pipeline.abort()
        else:
            log.debug("%s again: already stopping", name(signum))

    def _how_to_abort(self) -> str:
        limit = f"; aborting after --shutdown-timeout {self.timeout:g}s" if self.timeout else ""
        return "press Ctrl-C again to abort" + limit

    def _drain(self) -> None:
        self.pipeline.stop()
        if self.timeout and self._timer is None:
            self._timer = threading.Timer(self.timeout, self._expired)
            self._timer.daemon = True
            self._timer.start()

    def _expired(self) -> None:
        if not self.pipeline.aborted:
            log.warning("--shutdown-timeout %gs expired while draining: aborting, unwritten "
                        "messages are not acknowledged", self.timeout)
            self.pipeline.abort()
