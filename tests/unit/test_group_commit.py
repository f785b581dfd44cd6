"""Group commit: every caller gets its own item's result once it is written; callers that
arrive during a write share the next one; a failed write fails exactly its own callers."""

import asyncio
import threading
import time

import pytest

from control_plane.group_commit import AsyncGroupCommit, GroupCommit


def test_concurrent_callers_share_writes_and_each_gets_its_result():
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        batches.append(list(items))
        time.sleep(0.01)  # a slow disk: others queue meanwhile
        return [i * 10 for i in items]

    group = GroupCommit(write)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, group.submit(i))) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i * 10 for i in range(200)}
    assert sorted(i for b in batches for i in b) == list(range(200))  # each written exactly once
    assert len(batches) < 50 and max(map(len, batches)) > 1


def test_a_failed_write_fails_its_callers_and_the_next_write_goes_on():
    calls = []

    def write(items: list[str]) -> list[str]:
        calls.append(items)
        if "bad" in items:
            raise OSError("disk full")
        return items

    group = GroupCommit(write)
    with pytest.raises(OSError, match="disk full"):
        group.submit("bad")
    assert group.submit("good") == "good"
    assert calls == [["bad"], ["good"]]


def test_batches_are_capped():
    sizes = []
    gate = threading.Event()

    def write(items: list[int]) -> list[int]:
        sizes.append(len(items))
        gate.wait(1)
        return items

    group = GroupCommit(write, max_batch=5)
    threads = [threading.Thread(target=group.submit, args=(i,)) for i in range(23)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join()
    assert sum(sizes) == 23 and max(sizes) <= 5


def test_submit_all_writes_every_item_and_returns_their_results_in_order():
    group = GroupCommit(lambda items: [i * 2 for i in items], max_batch=3)
    assert group.submit_all([1, 2, 3, 4, 5, 6, 7]) == [2, 4, 6, 8, 10, 12, 14]


def test_coroutines_share_writes_beyond_a_thread_pool_and_each_gets_its_result():
    """A thousand waiting ACKs hold no thread: they share a handful of writes (with one blocked
    worker thread each, a 6-thread pool capped a write at 6 of them)."""
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        batches.append(list(items))
        time.sleep(0.01)
        return [i * 10 for i in items]

    async def main() -> list[int]:
        group = AsyncGroupCommit(GroupCommit(write))
        return await asyncio.gather(*(group.submit(i) for i in range(1000)))

    assert asyncio.run(main()) == [i * 10 for i in range(1000)]
    assert sorted(i for b in batches for i in b) == list(range(1000))  # each written exactly once
    assert len(batches) <= 3


def test_a_failed_async_write_fails_its_callers_and_the_next_write_goes_on():
    def write(items: list[str]) -> list[str]:
        if "bad" in items:
            raise OSError("disk full")
        return items

    async def main() -> None:
        group = AsyncGroupCommit(GroupCommit(write))
        with pytest.raises(OSError, match="disk full"):
            await group.submit("bad")
        assert await group.submit("good") == "good"

    asyncio.run(main())
