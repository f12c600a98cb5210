"""Memory: the run's limit (``--memory-limit``, by default 80% of the cgroup's), the process's
resident size, and the pressure signal built on them.

One place for these numbers: the runner pauses receiving and shrinks batches with it, the
adaptive runtime reads :meth:`MemoryLimit.pressure`, and metrics read :meth:`MemoryLimit.gauges`.
The limit is checked against what the process really holds (RSS, read from ``/proc``), not an
estimate, so it covers every allocator; the estimates below only decide how much room to keep.

Threads: every method is safe from any thread (RSS reads are cached for ``CACHE_SECONDS``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

log = logging.getLogger("parquet_ingestor")

#: Share of the cgroup's ``memory.max`` that ``--memory-limit`` defaults to.
CGROUP_SHARE = 0.8
#: Resident bytes per input byte of a batch while it is flushed: the bodies as Messages
#: (~1.6x), the joined input and the decoded table, the encoded file (measured on the
#: benchmark events, docs/performance.md).
BATCH_FACTOR = 4
#: Resident bytes per message kept waiting in an open file once its body is dropped (the
#: Message, its id, the source's and the file's bookkeeping).
HELD_MESSAGE_BYTES = 200
#: Smallest batch the limit shrinks batches to.
MIN_BATCH_BYTES = 1 << 20
#: Seconds an RSS reading is reused.
CACHE_SECONDS = 0.02

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cgroup_limit(root: str = "/sys/fs/cgroup") -> int | None:
    """The container's memory limit in bytes: cgroup v2 ``memory.max``, else v1
    ``memory.limit_in_bytes``; None when there is none ("max", or v1's huge sentinel)."""
    for name in ("memory.max", "memory/memory.limit_in_bytes", "memory.limit_in_bytes"):
        try:
            with open(os.path.join(root, name)) as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit():
            return None
        value = int(text)
        return value if value < (1 << 60) else None  # v1 "unlimited" is ~2**63
    return None


def default_limit(root: str = "/sys/fs/cgroup") -> int | None:
    """``--memory-limit``'s default: 80% of the cgroup limit, or None (off)."""
    limit = cgroup_limit(root)
    return int(limit * CGROUP_SHARE) if limit else None


def rss() -> int:
    """This process's resident set size in bytes (``/proc/self/statm``; 0 where missing)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def peak_rss() -> int:
    """The highest resident size of this process so far (``VmHWM``; 0 where missing)."""
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _libc_function(name: str) -> Any:
    """A function of the C library (glibc), or None where there is none. glibc's soname is
    tried first: ``ctypes.util.find_library`` runs ``ldconfig -p`` in a child process (~10 ms
    at every start)."""
    libc: ctypes.CDLL | None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        from ctypes.util import find_library

        found = find_library("c")
        try:
            libc = ctypes.CDLL(found) if found else None
        except OSError:
            libc = None
    return getattr(libc, name, None) if libc is not None else None


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` (returns freed heap pages to the system), or None."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


#: glibc's mallopt parameter for the number of malloc arenas
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """For the ``ingest`` command (an application, not the library): at most ``arenas``
    glibc malloc arenas, unless ``MALLOC_ARENA_MAX`` says otherwise. By default each thread
    that allocates under contention gets its own arena (up to 8 per core), and freed Arrow
    buffers and batches stay resident in each: 24 open partitions peaked ~37 MiB higher
    (docs/performance.md). True when set."""
    mallopt = None if "MALLOC_ARENA_MAX" in os.environ else _libc_function("mallopt")
    return bool(mallopt(_M_ARENA_MAX, arenas)) if mallopt is not None else False


class MemoryLimit:
    """The memory limit of one run (``limit`` None: off) and the process's use of it.

    ``baseline`` is the resident size when the run was built (interpreter, libraries): what
    batches can use is the limit less that.
    """

    def __init__(self, limit: int | None, *, measure: Callable[[], int] = rss,
                 baseline: int | None = None) -> None:
        self.limit = limit or None
        self._measure = measure
        self.baseline = measure() if baseline is None else baseline
        self._lock = threading.Lock()
        self._last = (0.0, 0)
        self._trim = _malloc_trim()
        self._warned = False

    @property
    def limited(self) -> bool:
        return self.limit is not None

    def rss(self) -> int:
        """Resident bytes now (cached for a few milliseconds)."""
        now = time.monotonic()
        with self._lock:
            at, value = self._last
            if now - at < CACHE_SECONDS:
                return value
        value = self._measure()
        with self._lock:
            self._last = (now, value)
        return value

    def used(self) -> int:
        """Bytes counted against the limit: the resident size."""
        return self.rss()

    def pressure(self) -> float:
        """``used / limit`` (0.0 without a limit): above 1.0 the process is past it. The
        signal for anything that sizes itself by memory (workers, pollers)."""
        return self.used() / self.limit if self.limit else 0.0

    def would_pass(self, extra: int) -> bool:
        """True when ``extra`` more bytes would take the process past the limit."""
        return self.limit is not None and self.used() + extra > self.limit

    def gauges(self) -> dict[str, float]:
        """``memory_limit_bytes`` (0: off), ``memory_rss_bytes``, ``memory_pressure``."""
        used = self.used()
        return {"memory_limit_bytes": float(self.limit or 0), "memory_rss_bytes": float(used),
                "memory_pressure": used / self.limit if self.limit else 0.0}

    # ---------------------------------------------------------------- sizing

    def batch_bytes(self, configured: int, batches: int) -> int:
        """The batch size to use so ``batches`` batches in memory at once fit the limit:
        ``configured``, or smaller (never below MIN_BATCH_BYTES)."""
        if self.limit is None:
            return configured
        room = (self.limit - self.baseline) // (BATCH_FACTOR * max(1, batches))
        return max(min(configured, MIN_BATCH_BYTES), min(configured, room))

    def held_bytes(self, configured: int) -> int:
        """Bytes of messages that may wait in open files: ``configured``, or a third of what
        the limit leaves (held bodies stay resident ~2x)."""
        if self.limit is None:
            return configured
        return max(1, min(configured, (self.limit - self.baseline) // 6))

    def check(self, batch_max_bytes: int, flag: str = "--memory-limit") -> None:
        """ConfigError when the limit is below what one batch needs: the process as it is
        plus one batch as small as batches shrink to (``--batch-max-bytes`` if smaller)."""
        if self.limit is None:
            return
        batch = min(batch_max_bytes, MIN_BATCH_BYTES)
        needs = self.baseline + BATCH_FACTOR * batch
        if self.limit < needs:
            raise ConfigError(
                f"{flag}: {_mib(self.limit)} is below what one batch needs: {_mib(needs)} "
                f"(the process's {_mib(self.baseline)} + {BATCH_FACTOR} x a batch of "
                f"{_mib(batch, 1)})")

    def release_freed(self) -> None:
        """Give memory the allocator keeps but no longer uses back to the system."""
        if self._trim is not None:
            self._trim()
        with self._lock:
            self._last = (0.0, 0)

    def warn_once(self, message: str, *args: object) -> None:
        if not self._warned:
            self._warned = True
            log.warning(message, *args)


def _mib(n: int, digits: int = 0) -> str:
    return f"{n / (1 << 20):.{digits}f}MiB"
