import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge_node.batching import MicroBatcher, length_groups


def test_length_groups_keep_similar_lengths_together():
    groups = length_groups([10, 500, 12, 480, 30, 1000])
    sizes = [[[10, 500, 12, 480, 30, 1000][i] for i in g] for g in groups]
    assert sizes == [[10, 12, 30], [480, 500], [1000]]


def run(coro):
    return asyncio.run(coro)


def make(fn, **kw):
    executor = ThreadPoolExecutor(2)
    options = dict(executor=executor, max_batch=16, max_wait_s=0.02, workers=1) | kw
    return MicroBatcher(fn, **options), executor


def test_concurrent_callers_share_runs_and_each_gets_its_own_result():
    calls = []
    lock = threading.Lock()

    def double(items):
        with lock:
            calls.append(len(items))
        return [i * 2 for i in items]

    async def main():
        batcher, executor = make(double)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(i) for i in range(40)))
        await batcher.close()
        executor.shutdown()
        return results

    assert run(main()) == [i * 2 for i in range(40)]
    assert sum(calls) == 40
    assert len(calls) < 40 and max(calls) <= 16


def test_one_bad_input_fails_only_its_own_caller():
    def fragile(items):
        if "bad" in items:
            raise ValueError("cannot score 'bad'")
        return [s.upper() for s in items]

    async def main():
        batcher, executor = make(fragile)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(s) for s in ["a", "bad", "c"]), return_exceptions=True)
        await batcher.close()
        executor.shutdown()
        return results

    a, bad, c = run(main())
    assert (a, c) == ("A", "C")
    assert isinstance(bad, ValueError)


def test_close_finishes_queued_work():
    async def main():
        batcher, executor = make(lambda items: items, max_wait_s=0.05)
        batcher.start()
        pending = [asyncio.create_task(batcher.submit(i)) for i in range(5)]
        await asyncio.sleep(0)
        await batcher.close()
        executor.shutdown()
        return [t.result() for t in pending]

    assert run(main()) == list(range(5))


def test_submit_before_start_is_an_error():
    async def main():
        batcher, executor = make(lambda items: items)
        with pytest.raises(RuntimeError, match="start"):
            await batcher.submit(1)
        executor.shutdown()

    run(main())


def batch_sizes(min_queue: int, waiting: int) -> list[int]:
    """The runs' sizes when ``waiting`` items queue behind a first one that holds the one worker."""
    started, release = threading.Event(), threading.Event()
    sizes = []

    def slow(items):
        sizes.append(len(items))
        started.set()
        release.wait(2)
        return items

    async def main():
        batcher, executor = make(slow, max_wait_s=0.0, workers=1, min_queue=min_queue)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(-1))
        await asyncio.sleep(0)  # one step of the loop: the caller's own
        assert started.wait(1)  # the pool runs it already; the loop has not turned again
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(waiting)]
        await asyncio.sleep(0.01)
        release.set()
        assert await first == -1 and await asyncio.gather(*rest) == list(range(waiting))
        await batcher.close()
        executor.shutdown()

    run(main())
    return sizes


def test_with_no_wait_an_item_that_finds_nothing_queued_and_nothing_running_runs_at_once():
    """Its run is handed to the pool before the caller first yields (no collector hand-off, checked
    in batch_sizes), and items that arrive while every worker is busy still share a run."""
    assert batch_sizes(min_queue=1, waiting=3) == [1, 3]


def largest_job(share: bool) -> tuple[int, int]:
    """(items run, the largest job) for four items queued at once with two idle workers."""
    sizes = []
    lock = threading.Lock()

    def record(items):
        with lock:
            sizes.append(len(items))
        return items

    async def main():
        batcher, executor = make(record, max_batch=4, max_wait_s=0.05, workers=2, share=share)
        batcher.start()
        assert await asyncio.gather(*(batcher.submit(i) for i in range(4))) == [0, 1, 2, 3]
        await batcher.close()
        executor.shutdown()

    run(main())
    return sum(sizes), max(sizes)


def test_shared_jobs_are_split_between_idle_workers():
    """With ``share``, four queued items and two idle workers: the first job takes two, the other
    worker the rest (without it, one worker takes all four while the other idles)."""
    assert largest_job(share=True) == (4, 2)
    assert largest_job(share=False) == (4, 4)


def test_a_batch_forms_only_from_a_queue_that_deep():
    """With ``min_queue``, items that queue fewer than that go one a run; as many or more share one."""
    assert batch_sizes(min_queue=4, waiting=3) == [1, 1, 1, 1]
    assert batch_sizes(min_queue=4, waiting=4) == [1, 4]
