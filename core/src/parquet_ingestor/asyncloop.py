"""An asyncio event loop on its own thread, for plugins whose client library is asyncio-only.

The pipeline calls ``receive``, ``ack`` and ``nack`` from plain threads; a client such as
nats-py or aiokafka needs one running event loop that owns its connection. Start one
:class:`EventLoopThread` per component, connect through it, and call coroutines with
:meth:`EventLoopThread.run` from any pipeline thread::

    self.loop = EventLoopThread("nats")
    self.client = self.loop.run(nats.connect(url), timeout=10)
    ...
    msgs = self.loop.run(self.sub.fetch(max_messages, timeout=timeout), timeout=timeout + 5)
    ...
    def close(self):
        self.loop.run(self.client.drain(), timeout=10)
        self.loop.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class EventLoopThread:
    """One event loop running forever on a daemon thread until :meth:`close`.

    Threads: :meth:`run` may be called from any thread but the loop's own (that would wait
    for itself: it raises instead). :meth:`close` is idempotent.
    """

    def __init__(self, name: str = "asyncio-client") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        self._closed = False

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception).

        After ``timeout`` seconds the coroutine is cancelled and ``TimeoutError`` raised.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("EventLoopThread.run called from its own loop: await instead")
        if self._closed:
            coro.close()
            raise RuntimeError("EventLoopThread is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"coroutine did not finish within {timeout}s") from None

    def close(self, timeout: float = 10.0) -> None:
        """Cancel what still runs on the loop, stop it and join its thread."""
        if self._closed:
            return
        self._closed = True

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> EventLoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
