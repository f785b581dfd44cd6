"""Dynamic micro-batching (the idea of Triton's dynamic batcher) for asyncio callers.

Concurrent ``submit`` calls queue up; a collector takes up to ``max_batch`` items,
waiting at most ``max_wait`` for the batch to fill, and runs them as one call in a
thread pool (ONNX Runtime releases the GIL). Items are grouped by length so a short
text is not padded to a long one. If a batch raises, its items are retried one by one,
so a bad input fails only its own caller. At most ``workers`` batches run at once;
while all are busy the queue keeps filling, so batches grow exactly when load does.

With no wait configured, an item that finds nothing queued and nothing running runs at once, as
a run of its own, in its caller's coroutine: at low load the batcher costs what a plain call in
the pool costs. (Letting every item that finds a worker free run alone would cost the fast stage its
batches at concurrency 32: callers come back one by one and mostly find the queue just drained.)

With ``min_queue`` above one, a batch takes more than its first item only when at least that many
wait: at low load the items go one a run, as they arrive, and batches form only from a queue
that deep (fast-stage batches of a few texts made the escalated ones move as a convoy: at
concurrency 8 they cost p99 and throughput, see docs/benchmarks.md).

With ``share``, a worker takes no more than its share of the queue while other
workers are idle (for jobs that are batches only to save hand-offs, such as the transformer's
texts per job: one worker taking four while another idles made the fourth wait for three runs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def length_groups(sizes: Sequence[int], max_ratio: float = 2.0, floor: int = 32) -> list[list[int]]:
    """Indices sorted by size, split wherever the longest would exceed ``max_ratio`` × the shortest."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    groups: list[list[int]] = []
    for index in order:
        if groups and sizes[index] <= max_ratio * max(floor, sizes[groups[-1][0]]):
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


class MicroBatcher(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[list[T]], list[R]],
        *,
        executor: Executor,
        max_batch: int,
        max_wait_s: float,
        workers: int,
        size_of: Callable[[T], int] = lambda _: 1,
        on_batch: Callable[[int], None] | None = None,
        share: bool = False,
        min_queue: int = 1,
    ) -> None:
        self._run = run
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._size_of = size_of
        self._on_batch = on_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._full = asyncio.Event()
        self._slots = asyncio.Semaphore(workers)
        self._workers = workers
        self._busy = 0  # workers running a batch
        self._share = share
        self._min_queue = min_queue
        self._inflight: set[asyncio.Task] = set()
        self._direct = 0  # items running at once, outside the queue (see submit)
        self._held = False
        self._collector: asyncio.Task | None = None

    def start(self) -> None:
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect())

    async def submit(self, item: T) -> R:
        if self._collector is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        if self._max_wait_s == 0 and self._busy == 0 and self._queue.empty():
            # Nothing queued and nothing running: run it now, in this coroutine (no hand-off to the
            # collector and no task of its own). Under load it queues, and batches form.
            await self._slots.acquire()  # free: does not wait
            self._busy += 1
            self._direct += 1
            try:
                await self._dispatch([(item, future)])
            finally:
                self._direct -= 1
            return future.result()
        self._queue.put_nowait((item, future))
        if self._queue.qsize() >= self._max_batch:
            self._full.set()
        return await future

    async def close(self) -> None:
        """Finish everything queued, then stop."""
        while not self._queue.empty() or self._inflight or self._direct or self._held:
            await asyncio.sleep(0.005)
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
            self._collector = None

    async def _collect(self) -> None:
        while True:
            first = await self._queue.get()  # then a worker: an idle collector holds none (see submit)
            self._held = True  # out of the queue, not dispatched yet: close() waits for it
            await self._slots.acquire()
            self._busy += 1
            batch = [first]
            if self._queue.qsize() + 1 < self._max_batch and self._max_wait_s > 0:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), self._max_wait_s)
                except TimeoutError:
                    pass
            limit = self._max_batch if self._queue.qsize() + 1 >= self._min_queue else 1
            if self._share:  # no more than this worker's share of the queue while others are idle
                idle = self._workers - self._busy
                limit = min(limit, -(-(self._queue.qsize() + 1) // (idle + 1)))
            while len(batch) < limit and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if self._queue.qsize() < self._max_batch:
                self._full.clear()
            task = asyncio.get_running_loop().create_task(self._dispatch(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            self._held = False

    async def _dispatch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            if self._on_batch is not None:
                self._on_batch(len(batch))
            items = [item for item, _ in batch]
            loop = asyncio.get_running_loop()
            outcomes = await loop.run_in_executor(self._executor, self._run_grouped, items)
            for (_, future), outcome in zip(batch, outcomes, strict=False):
                if future.done():  # the caller went away
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        finally:
            self._busy -= 1
            self._slots.release()

    def _run_grouped(self, items: list[T]) -> list[R | BaseException]:
        outcomes: list[R | BaseException] = [RuntimeError("not run")] * len(items)
        for group in length_groups([self._size_of(i) for i in items]):
            try:
                results = self._run([items[i] for i in group])
                for index, result in zip(group, results, strict=False):
                    outcomes[index] = result
            except Exception:
                for index in group:  # isolate the culprit: only its own caller fails
                    try:
                        outcomes[index] = self._run([items[index]])[0]
                    except Exception as exc:
                        outcomes[index] = exc
        return outcomes
