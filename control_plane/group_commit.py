"""Group commit: callers that arrive while a write is under way are written together, next.

Each caller still waits until its own item is durable (so an ACK is answered only after its
receipt is stored), but a thousand edges acknowledging the same deletion cost a handful of
transactions instead of a thousand. The first caller to find no write under way writes
everything queued so far; the others wait for the write that holds their item.
"""

from __future__ import annotations

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
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done:
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
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]
