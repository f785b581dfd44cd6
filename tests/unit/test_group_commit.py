"""Group commit: every caller gets its own item's result once it is written; callers that
arrive during a write share the next one; a failed write fails exactly its own callers."""

import threading
import time

import pytest

from control_plane.group_commit import GroupCommit


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
