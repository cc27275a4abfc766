"""The scoring threads: work handed over by the event loop, its result handed back to it.

One queue in (`queue.SimpleQueue`, in C) and one `call_soon_threadsafe` back, per request. The standard
`run_in_executor` does the same through a `concurrent.futures.Future` chained to an asyncio one, whose locks
and state copies cost the event loop's thread more Python than the rest of a request's handling there.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class ScoringPool:
    """`workers` threads that each run one piece of work at a time, in the order it was handed over."""

    def __init__(self, workers: int, name: str = "smsguard-score") -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{n}", daemon=True) for n in range(workers)]
        for thread in self._threads:
            thread.start()

    def run(self, work: Callable[[], Any]) -> asyncio.Future[Any]:
        """`work()` in a thread of the pool; the future, of the running loop, gets its result or exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((loop, future, work))
        return future

    def shutdown(self) -> None:
        """Cancel the work not yet started (from the loop's thread), and let the threads end after the one they run."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            loop, future, work = item
            try:
                result, error = work(), None
            except BaseException as raised:  # handed to the awaiting coroutine, which raises it there
                result, error = None, raised
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody awaits the answer any more
                loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile (the client went away, or the service is stopping)
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
