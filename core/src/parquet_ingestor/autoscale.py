"""The autoscaler: sizes the flush workers (``--workers auto``) and a source's pollers at run time.

Every ``interval`` it takes a :class:`Sample` of the run's cumulative counters and decides from
the differences:

* **workers grow** when the receive loop waited on a full flush queue for most of the interval
  (the flush queue backs up) while the process's CPU and memory are below their targets; by one,
  or doubling while each step brought most of its ideal gain;
* **workers shrink** under memory pressure, when CPU is well above its target, or when most of
  them sat idle;
* **pollers grow**, one at a time and rarely, when the receive loop waited on the source with
  batches unfilled while messages were arriving and the flush queue was not under pressure;
  they shrink under memory pressure or when the flush queue is.

A step up is a **probe**: the flush rate (pollers: the receive rate) since the step must beat the
rate before it (averaged over the intervals at the old size) by a fair share of what the step
could give, within two intervals. When it does not (a transformer that holds the GIL, where more
workers only contend for it: process CPU stays at one core while wall-clock work is split), the
step is undone and not tried again for ``hold`` seconds (soon, when the process got markedly
less CPU meanwhile: a busier machine proves nothing). Cooldowns keep steps apart.
Each decision is logged (INFO up, WARNING down, with its reason) and counted
(``workers_scaled_up``... through ``count``).

Clock and sampler are injected, so the decisions are unit-tested without sleeping; the runner
only wires this to its queue and threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("parquet_ingestor")

#: intervals at one size averaged into the rate a step up is judged against
STEADY_WINDOWS = 5

#: The memory-pressure signal: the fraction of the memory limit in use now (0.0: no limit or
#: none used; 1.0: at the limit). ``Pipeline(memory_pressure=...)`` takes any such callable; by default it is the run's
#: :meth:`~parquet_ingestor.memory.MemoryLimit.pressure` (``--memory-limit``).
MemoryPressure = Callable[[], float]


def available_cpus() -> float:
    """CPUs this process may use: its affinity, capped by a cgroup v2 ``cpu.max`` quota."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cpus = float(os.cpu_count() or 1)
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(0.1, int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return cpus


@dataclass(frozen=True)
class AutoscalePolicy:
    """How the autoscaler decides; shares are of an interval, of the CPUs, or of the memory
    limit."""

    interval: float = 1.0  #: seconds between decisions
    up_cooldown: float = 1.0  #: after a change, seconds before workers grow again
    down_cooldown: float = 5.0  #: after a change, before workers shrink for CPU or idleness
    poller_cooldown: float = 10.0  #: after a change, before pollers change again
    hold: float = 60.0  #: a step up that did not pay is not tried again for this long
    backlog: float = 0.5  #: share of the interval waiting on a full flush queue: backed up
    starved: float = 0.5  #: share waiting on the source with nothing ready: input-bound
    cpu_target: float = 0.8  #: workers grow only below this share of the CPUs
    cpu_high: float = 0.95  #: ...and shrink above this one
    memory_target: float = 0.8  #: workers and pollers grow only below this share of the limit
    memory_high: float = 0.9  #: ...and shrink above this one
    min_gain: float = 0.2  #: a step up must bring this share of its ideal gain (at least 5%)


@dataclass(frozen=True)
class Sample:
    """The run's cumulative counters at one moment; the autoscaler takes differences."""

    cpu_seconds: float = 0.0  #: process CPU time, user + system
    flushed_bytes: float = 0.0  #: input bytes of the batches the flush workers finished
    received: float = 0.0  #: messages received
    backlog_seconds: float = 0.0  #: the receive loop blocked on a full flush queue
    starved_seconds: float = 0.0  #: the receive loop waited on a source with nothing ready
    busy_seconds: float = 0.0  #: flush workers busy (summed over workers)
    memory: float = 0.0  #: memory pressure now (a fraction of the limit; not cumulative)


class Resizable(Protocol):
    """What the autoscaler sizes: the flush workers, a source's pollers.

    Threads: ``resize`` is called from the autoscaler's thread; it returns the size now in
    force (a source may refuse or clamp)."""

    @property
    def size(self) -> int: ...

    def resize(self, n: int) -> int: ...


class SourcePollers:
    """A source's pollers as a :class:`Resizable`.

    A source opts in with three attributes (see ``interfaces.Source``): ``pollers`` (int, how
    many poll now), ``poller_bounds`` (``(fewest, most)`` when its pollers are on auto, None
    otherwise) and ``resize_pollers(n)`` (returns the count now in force)."""

    def __init__(self, source: object, bounds: tuple[int, int]) -> None:
        self.source = source
        self.bounds = bounds

    @classmethod
    def of(cls, source: object) -> SourcePollers | None:
        """The source's pollers when they are on auto, else None."""
        bounds = getattr(source, "poller_bounds", None)
        if (bounds is None or not callable(getattr(source, "resize_pollers", None))
                or not isinstance(getattr(source, "pollers", None), int)):
            return None
        low, high = bounds
        return cls(source, (int(low), int(high)))

    @property
    def size(self) -> int:
        return int(getattr(self.source, "pollers"))  # noqa: B009 - an optional attribute

    def resize(self, n: int) -> int:
        return int(getattr(self.source, "resize_pollers")(n))  # noqa: B009


@dataclass
class Decision:
    """One change the autoscaler made."""

    target: str  #: "workers" or "pollers"
    old: int
    new: int
    reason: str

    @property
    def up(self) -> bool:
        return self.new > self.old


@dataclass
class _Probe:
    old: int
    new: int
    rate: float  #: the rate over the intervals before the step (since the change before)
    cpu: float  #: process CPUs in use over them


@dataclass
class _Target:
    name: str
    resizable: Resizable
    low: int
    high: int
    unit: str
    #: the last intervals at the current size: (seconds, rate x seconds, CPUs x seconds)
    recent: deque[tuple[float, float, float]] = field(
        default_factory=lambda: deque(maxlen=STEADY_WINDOWS))
    changed: float = float("-inf")
    probe: _Probe | None = None
    ceiling: int = 1 << 30
    ceiling_until: float = float("-inf")
    double: bool = True  #: the last step up paid well: the next may double
    idle_since: float | None = None

    def steady(self) -> tuple[float, float]:
        """Rate and CPUs averaged over the intervals since the last change."""
        seconds = sum(r[0] for r in self.recent) or 1.0
        return sum(r[1] for r in self.recent) / seconds, sum(r[2] for r in self.recent) / seconds


@dataclass
class _Window:
    seconds: float
    backlog: float  #: share of the window
    starved: float
    busy: float  #: workers busy on average
    cpu: float  #: CPUs in use on average
    cpu_share: float  #: of the available CPUs
    memory: float
    flush_rate: float  #: input bytes per second
    receive_rate: float  #: messages per second
    received: float


@dataclass
class Autoscaler:
    """Sizes ``workers`` and ``pollers`` within their bounds; call :meth:`step` every
    ``policy.interval`` (:meth:`run` does, on its own thread, until stopped)."""

    policy: AutoscalePolicy
    sample: Callable[[], Sample]
    workers: Resizable | None = None
    worker_bounds: tuple[int, int] = (1, 1)
    pollers: Resizable | None = None
    poller_bounds: tuple[int, int] = (1, 1)
    clock: Callable[[], float] = time.monotonic
    cpus: float = field(default_factory=available_cpus)
    count: Callable[[str], object] = lambda name: None
    _last: tuple[float, Sample] | None = field(default=None, init=False)
    _targets: dict[str, _Target] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.workers is not None:
            self._targets["workers"] = _Target("workers", self.workers, *self.worker_bounds,
                                               unit="B/s")
        if self.pollers is not None:
            self._targets["pollers"] = _Target("pollers", self.pollers, *self.poller_bounds,
                                               unit="msg/s")

    def run(self, stop: threading.Event) -> None:
        """Decide every ``policy.interval`` until ``stop`` is set; a failing step is logged and
        the next one tried (the run goes on at its current size)."""
        self.step()  # the first sample: a baseline
        while not stop.wait(self.policy.interval):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - sizing must never break the run
                log.exception("autoscaler step failed")

    def step(self) -> list[Decision]:
        """Take a sample and make the decisions it calls for (none on the first sample)."""
        now, sample = self.clock(), self.sample()
        last, self._last = self._last, (now, sample)
        if last is None:  # the pollers' cooldown runs from the start
            if "pollers" in self._targets:
                self._targets["pollers"].changed = now
            return []
        if now - last[0] <= 0:
            return []
        window = self._window(now - last[0], last[1], sample)
        for target in self._targets.values():
            rate = window.flush_rate if target.name == "workers" else window.receive_rate
            target.recent.append((window.seconds, rate * window.seconds,
                                  window.cpu * window.seconds))
        made: list[Decision] = []
        workers = self._targets.get("workers")
        if workers is not None:
            made += self._decide_workers(workers, window, now)
        pollers = self._targets.get("pollers")
        busy_probe = workers is not None and workers.probe is not None
        if pollers is not None and not made and not busy_probe:
            made += self._decide_pollers(pollers, window, now)
        return made

    # ------------------------------------------------------------------------- decisions

    def _window(self, seconds: float, a: Sample, b: Sample) -> _Window:
        cpu = max(0.0, b.cpu_seconds - a.cpu_seconds) / seconds
        return _Window(
            seconds=seconds,
            backlog=min(1.0, (b.backlog_seconds - a.backlog_seconds) / seconds),
            starved=min(1.0, (b.starved_seconds - a.starved_seconds) / seconds),
            busy=(b.busy_seconds - a.busy_seconds) / seconds,
            cpu=cpu, cpu_share=cpu / self.cpus, memory=b.memory,
            flush_rate=(b.flushed_bytes - a.flushed_bytes) / seconds,
            receive_rate=(b.received - a.received) / seconds,
            received=b.received - a.received)

    def _decide_workers(self, t: _Target, w: _Window, now: float) -> list[Decision]:
        p = self.policy
        n = t.resizable.size
        if w.memory >= p.memory_high and n > t.low and now - t.changed >= p.interval * 0.99:
            t.probe = None  # memory first, whatever a step up was showing
            new = max(t.low, n - max(1, n // 2))
            return self._apply(t, new, now, f"memory at {w.memory:.0%} of the limit (shrinking "
                                            f"above {p.memory_high:.0%})", w)
        verdict = self._judge(t, w, now) if t.probe is not None else None
        if verdict is not None:
            return verdict
        if w.cpu_share >= p.cpu_high and n > t.low and now - t.changed >= p.down_cooldown:
            return self._apply(t, n - 1, now, f"CPU at {w.cpu_share:.0%} of {self.cpus:g} "
                                              f"CPUs (shrinking above {p.cpu_high:.0%})", w)
        idle = n - w.busy >= 1.5 and w.backlog < 0.05
        if not idle:
            t.idle_since = None
        elif t.idle_since is None:
            t.idle_since = now - w.seconds
        if (idle and t.idle_since is not None and n > t.low
                and now - max(t.changed, t.idle_since) >= p.down_cooldown):
            return self._apply(t, n - 1, now, f"on average {w.busy:.1f} of {n} workers busy "
                                              f"for {now - t.idle_since:.0f}s", w)
        high = t.high if now >= t.ceiling_until else min(t.high, t.ceiling)
        if (w.backlog >= p.backlog and n < high and w.cpu_share < p.cpu_target
                and w.memory < p.memory_target and now - t.changed >= p.up_cooldown):
            step = n if t.double and w.backlog >= 0.9 else 1
            new = min(high, n + step)
            t.probe = _Probe(n, new, *t.steady())
            return self._apply(t, new, now, f"flush queue full {w.backlog:.0%} of the last "
                                            f"{w.seconds:.1f}s, {self._levels(w)}", w)
        return []

    def _decide_pollers(self, t: _Target, w: _Window, now: float) -> list[Decision]:
        p = self.policy
        n = t.resizable.size
        if w.memory >= p.memory_high and n > t.low and now - t.changed >= p.interval * 0.99:
            t.probe = None
            return self._apply(t, n - 1, now, f"memory at {w.memory:.0%} of the limit "
                                              f"(shrinking above {p.memory_high:.0%})", w)
        verdict = self._judge(t, w, now) if t.probe is not None else None
        if verdict is not None:
            return verdict
        if now - t.changed < p.poller_cooldown:
            return []
        workers = self._targets.get("workers")
        flush_bound = workers is None or workers.resizable.size >= workers.high
        if w.backlog >= p.backlog and flush_bound and n > t.low:
            return self._apply(t, n - 1, now, f"flush queue full {w.backlog:.0%} of the last "
                                              f"{w.seconds:.1f}s: input is not what limits", w)
        high = t.high if now >= t.ceiling_until else min(t.high, t.ceiling)
        if (w.starved >= p.starved and w.backlog < 0.1 and w.received > 0 and n < high
                and w.memory < p.memory_target):
            t.probe = _Probe(n, n + 1, *t.steady())
            return self._apply(t, n + 1, now, f"batches waited for input {w.starved:.0%} of "
                                              f"the last {w.seconds:.1f}s while "
                                              f"{w.receive_rate:,.0f} msg/s arrived", w)
        return []

    def _judge(self, t: _Target, w: _Window, now: float) -> list[Decision] | None:
        """The intervals after a step up: keep it as soon as the rate since the step rose
        enough (None: decide on as usual); else wait for a second interval (``[]``: nothing
        else this time), then undo it (the decisions that did)."""
        probe = t.probe
        assert probe is not None
        rate, cpu = t.steady()
        ideal = (probe.new - probe.old) / probe.old
        needed = max(0.05, ideal * self.policy.min_gain)
        gain = rate / probe.rate - 1 if probe.rate > 0 else (1.0 if rate > 0 else 0.0)
        if gain >= needed:
            t.probe = None
            t.double = gain >= 0.7 * ideal
            return None
        if len(t.recent) < 2:
            return []  # one noisy interval does not condemn a step
        t.probe = None
        t.double = False
        # CPU-heavy work that got markedly less CPU: the machine got busier, and the window
        # says nothing about contention. Undone, but tried again soon.
        busier = probe.cpu >= 0.25 and cpu < 0.75 * probe.cpu
        hold = self.policy.down_cooldown if busier else self.policy.hold
        t.ceiling, t.ceiling_until = probe.old, now + hold
        if t.resizable.size != probe.new:
            return []  # changed meanwhile (by the source itself): nothing to undo
        what = "worker" if t.name == "workers" else "poller"
        s = "s" if probe.new - probe.old > 1 else ""
        measured = (f"{_rate(probe.rate, t.unit)} -> {_rate(rate, t.unit)}, {gain:+.0%}; "
                    f"process CPU {probe.cpu:.2f} -> {cpu:.2f} of {self.cpus:g}")
        if busier:
            why = "the process got less CPU (a busier machine?), so the step is unproven"
        elif t.name == "workers":
            why = "they only contend (a transformer holding the GIL?)"
        else:
            why = "input is not limited by polling"
        reason = (f"{probe.new - probe.old} more {what}{s} did not raise throughput "
                  f"({measured}): {why}; not tried again for {hold:g}s")
        return self._apply(t, probe.old, now, reason, w)

    def _levels(self, w: _Window) -> str:
        memory = f", memory {w.memory:.0%} of the limit" if w.memory else ""
        return f"CPU {w.cpu_share:.0%} of {self.cpus:g} CPUs{memory}"

    def _apply(self, t: _Target, new: int, now: float, reason: str, w: _Window
               ) -> list[Decision]:
        old = t.resizable.size
        new = max(t.low, min(t.high, new))
        if new == old:
            t.probe = None
            return []
        got = t.resizable.resize(new)
        t.changed = now
        t.idle_since = None
        t.recent.clear()
        if got == old:
            t.probe = None
            return []
        decision = Decision(t.name, old, got, reason)
        direction = "up" if decision.up else "down"
        self.count(f"{t.name}_scaled_{direction}")
        log.log(logging.INFO if decision.up else logging.WARNING,
                "autoscale: %s %d -> %d: %s", t.name, old, got, reason,
                extra={"event": "autoscale", "target": t.name, "from": old, "to": got,
                       "reason": reason})
        return [decision]


def _rate(value: float, unit: str) -> str:
    if unit == "B/s":
        return f"{value / (1 << 20):,.1f} MiB/s"
    return f"{value:,.0f} {unit}"
