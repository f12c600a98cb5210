"""Process-wide interpreter tuning while pipelines run, shared and undone exactly once.

A pipeline raises the GIL switch interval (fewer hand-offs between flush threads) and the
gen-0 GC threshold (fewer collections while batches of fresh objects are built). Both are
process-wide, so they are reference-counted: the first running pipeline saves the caller's
values and sets the tuned ones, the last one to stop puts the saved values back; two pipelines
in one process, started and stopped in any order, leave the interpreter as it was found. A
value the application changed while pipelines ran is its own choice and is left alone.
Measured effect: docs/performance.md ("GIL switch interval").
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
from collections.abc import Iterator

#: GIL switch interval while a pipeline runs (CPython's default is 5 ms). Flush threads that
#: hold the GIL for Python work (transformers, dicts -> Arrow) hand it back and forth less, and
#: each keeps its batch in cache: +10-20% records per CPU-second for a per-message transformer,
#: +20% for the SQS source (docs/performance.md). I/O waits still release the GIL at once.
SWITCH_INTERVAL = 0.02
#: Gen-0 collection threshold while a pipeline runs (CPython's default is 700, or 2000 on 3.13+).
GEN0_THRESHOLD = 50_000

_lock = threading.Lock()
_users = 0
_saved_switch = 0.0
_saved_threshold: tuple[int, ...] = ()
_set_switch = 0.0
_set_threshold: tuple[int, ...] = ()


@contextlib.contextmanager
def tuned() -> Iterator[None]:
    """Tune the interpreter for a running pipeline; nests across pipelines and threads."""
    global _users, _saved_switch, _saved_threshold, _set_switch, _set_threshold
    with _lock:
        if _users == 0:
            _saved_switch = sys.getswitchinterval()
            _saved_threshold = gc.get_threshold()
            sys.setswitchinterval(max(_saved_switch, SWITCH_INTERVAL))
            gen0, *older = _saved_threshold
            gc.set_threshold(max(gen0, GEN0_THRESHOLD), *older)
            _set_switch, _set_threshold = sys.getswitchinterval(), gc.get_threshold()
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                if sys.getswitchinterval() == _set_switch:
                    sys.setswitchinterval(_saved_switch)
                if gc.get_threshold() == _set_threshold:
                    gc.set_threshold(*_saved_threshold)


@contextlib.contextmanager
def scoped_env(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of a block (unless the user set it), then
    put it back: for libraries that read a variable once, on first use (Arrow reads
    ``ARROW_DEFAULT_MEMORY_POOL`` when its default pool is first created)."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
