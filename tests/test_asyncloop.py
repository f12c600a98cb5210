"""EventLoopThread: asyncio-only clients called from the pipeline's plain threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from parquet_ingestor.asyncloop import EventLoopThread


def test_runs_coroutines_from_many_threads_on_one_loop() -> None:
    with EventLoopThread("test-loop") as loop:
        async def where(n: int) -> tuple[int, str, int]:
            await asyncio.sleep(0)
            return n, threading.current_thread().name, id(asyncio.get_running_loop())

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda n: loop.run(where(n), timeout=10), range(20)))
        assert [r[0] for r in results] == list(range(20))
        assert {r[1] for r in results} == {"test-loop"}
        assert {r[2] for r in results} == {id(loop.loop)}


def test_errors_timeouts_and_close() -> None:
    loop = EventLoopThread()

    async def boom() -> None:
        raise ValueError("from the client")

    with pytest.raises(ValueError, match="from the client"):
        loop.run(boom())
    started = threading.Event()
    cancelled = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        loop.run(forever(), timeout=0.2)
    assert started.is_set() and cancelled.wait(5)

    async def inner() -> None:
        async def nested() -> int:
            return 1
        loop.run(nested())  # from the loop's own thread: refused, not a deadlock

    with pytest.raises(RuntimeError, match="own loop"):
        loop.run(inner(), timeout=5)
    loop.close()
    loop.close()
    assert loop.loop.is_closed()
    with pytest.raises(RuntimeError, match="closed"):
        loop.run(boom())
