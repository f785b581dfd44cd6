"""Group commit: callers that arrive while a write is under way are written together, next.

Each caller still waits until its own item is durable (so an ACK is answered only after its
receipt is stored), but a thousand edges acknowledging the same deletion cost a handful of
transactions instead of a thousand. The first caller to find no write under way writes
everything queued so far; the others wait for the write that holds their item.

:class:`AsyncGroupCommit` is the same for callers on an event loop (the Sync streams' ACKs):
a waiting caller holds no thread, so how many receipts share a write is not capped by the size
of a thread pool (with one blocked worker thread per ACK, a pool of 6 threads meant batches of
at most 6). Its writes go through a :class:`GroupCommit`, so all writes still run one at a time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Ticket(Generic[T, R]):
    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """``write(items)`` stores a batch in one transaction and returns one result per item."""

    def __init__(self, write: Callable[[list[T]], list[R]], *, max_batch: int = 1000) -> None:
        self._write = write
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Ticket[T, R]] = []
        self._writing = False

    def submit(self, item: T) -> R:
        return self.submit_all([item])[0]

    def submit_all(self, items: list[T]) -> list[R]:
        """Several items at once; returns once every one is written (one result each, in order)."""
        tickets: list[_Ticket[T, R]] = [_Ticket(item) for item in items]
        with self._cond:
            self._queue.extend(tickets)
            while not all(t.done for t in tickets):
                if self._writing:
                    self._cond.wait()
                    continue
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
                self._writing = True
                self._cond.release()
                results: list[R | None] = [None] * len(batch)
                error: BaseException | None = None
                try:
                    results = list(self._write([t.item for t in batch]))
                except BaseException as exc:  # every caller of the batch hears the failure
                    error = exc
                finally:
                    self._cond.acquire()
                    self._writing = False
                for t, result in zip(batch, results, strict=True):
                    t.done, t.result, t.error = True, result, error
                self._cond.notify_all()
        for ticket in tickets:
            if ticket.error is not None:
                raise ticket.error
        return [t.result for t in tickets]  # type: ignore[misc]


class AsyncGroupCommit(Generic[T, R]):
    """Group commit for coroutines: ``await submit(item)`` returns once the item is written.
    Items queue on the event loop; one drain task hands each batch to ``group`` in a worker
    thread, and whatever arrived meanwhile goes into the next batch."""

    def __init__(self, group: GroupCommit[T, R], *, max_batch: int = 1000) -> None:
        self._group = group
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._drain: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._drain is None or self._drain.done():
            self._drain = loop.create_task(self._write_queued())
        return await future

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
            try:
                results = await asyncio.to_thread(self._group.submit_all, [item for item, _ in batch])
            except Exception as exc:  # every caller of the batch hears the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # a caller that went away (its stream closed) is skipped
                    future.set_result(result)
