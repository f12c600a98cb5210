"""Pausing CPython's cyclic garbage collector while a batch is decoded.

Decoding a batch creates hundreds of thousands of short-lived dicts and lists; the collector
would rescan them over and over (decoding with it paused runs about twice as fast). Pauses are
counted across threads, so concurrent flush workers and encoders can nest them freely, and a
collector the user had switched off stays off.

The collector is process-wide, so a pause also holds back the collection of the embedding
application's cycles. With several busy workers the pauses overlap and the collector could stay
off for the whole run; so once it has been off for :data:`MAX_PAUSE` seconds, the thread leaving
a pause collects the young generation itself (bounded work: about one gen-0 pass a second).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

#: Longest the collector stays off across overlapping pauses before a young collection.
MAX_PAUSE = 1.0

_lock = threading.Lock()
_depth = 0
_was_enabled = False
_off_since = 0.0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic GC until every thread inside a ``gc_paused()`` block has left it."""
    global _depth, _was_enabled, _off_since
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
            _off_since = time.monotonic()
        _depth += 1
    try:
        yield
    finally:
        collect = False
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _was_enabled:
                    gc.enable()
            elif _was_enabled and time.monotonic() - _off_since >= MAX_PAUSE:
                _off_since = time.monotonic()
                collect = True
        if collect:
            gc.collect(0)
