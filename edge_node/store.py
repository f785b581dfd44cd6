"""The edge's disk store: one diskcache (SQLite, WAL) directory under the data dir.

Why this is safe to kill: every multi-record change runs in one SQLite transaction
(``with store.transaction():``), and SQLite in WAL mode commits before a call returns,
so a process killed with SIGKILL restarts with every acknowledged write and no half
of any change. ``synchronous=NORMAL`` (diskcache's default) survives a process kill;
``EDGE_STORE_FSYNC=true`` also survives power loss, at the price of an fsync per write.

Size: with a budget (``max_bytes``, EDGE_STORE_MAX_BYTES) the store evicts cold records when
its database holds more than that: profiles and sampled texts, tagged with the minute they
were last written (to the second), least recently active first. Consent, suppressions, the privacy outbox,
cohort contributions and the node's own values are never evicted; if they alone exceed the
budget, further writes are refused (507) except deletions and withdrawals.

One node owns a data directory (an exclusive lock is taken at open, or by the supervisor of
``--workers N``, whose workers share the store). A single process also keeps decoded hot
records (consent, profile, suppression) in a small in-memory cache that every write through
this class updates; an entry is trusted only until its record's expiry. Workers sharing the
store keep no such cache (``hot_records=0``): another process may have written since.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import diskcache
import msgspec

from edge_node.disk import is_disk_full
from edge_node.errors import OutboxFull, StorageFull, StoreError
from edge_node.records import Alias, Consent, Keys, PrivacyRequest, Profile, Shown, Stored, Suppression
from sentiedge_core.key_files import lock_exclusively, private_dir, private_file

T = TypeVar("T", bound=Stored)

_encoder = msgspec.msgpack.Encoder()
HOT_PREFIXES = ("consent|", "profile|", "suppressed|", "alias|")
_decoders: dict[type, msgspec.msgpack.Decoder] = {}


COLD_KINDS = ("sample", "profile")  # what the size budget may evict, in this order within a second


def _cold(kind: str) -> str:
    """The eviction tag of a cold-able record: its kind and the second it was written (fixed
    width, so the tags sort by time)."""
    return f"{kind}:{int(time.time()):012d}"


def lock_directory(directory: Path) -> int:
    """Take the data directory's exclusive lock (released when the returned fd is closed, or
    the process ends); StoreError when another node holds it."""
    private_dir(directory)  # 0700: user data, keys and the dev app's secrets live here
    fd = lock_exclusively(directory / "store.lock")
    if fd is None:
        raise StoreError(f"the store in {directory} is in use by another process (one edge-node per data directory)")
    return fd


def _decoder(cls: type[T]) -> msgspec.msgpack.Decoder:
    if cls not in _decoders:
        _decoders[cls] = msgspec.msgpack.Decoder(cls)
    return _decoders[cls]


class EdgeStore:
    def __init__(self, directory: Path, *, retention_s: float, fsync: bool = False, hot_records: int = 100_000,
                 outbox_max: int = 100_000, max_bytes: int = 0, lock: bool = True) -> None:
        self.directory = Path(directory)
        self.outbox_max = outbox_max
        self.max_bytes = max_bytes  # 0: no budget
        self.over_budget = False  # evicting every cold record did not bring it under max_bytes
        self._essential = False  # inside a deletion or withdrawal: never refused for the budget
        self.full = False  # the disk was found full; cleared by whoever makes room (EdgeNode)
        self.on_refused: Callable[[str], None] = lambda reason: None  # a write refused: disk_full, store_budget
        self.retention_s = retention_s
        self._hot: OrderedDict[str, tuple[bytes | None, float | None]] = OrderedDict()
        self._hot_max = hot_records
        try:
            self._lock = lock_directory(self.directory) if lock else None  # else: the supervisor holds it
            private_file(private_dir(self.directory / "store") / "cache.db")  # 0600, and so its WAL
            self._cache = diskcache.Cache(str(self.directory / "store"), eviction_policy="none", tag_index=True,
                                          sqlite_synchronous=2 if fsync else 1, timeout=30)
            self._pages = sqlite3.connect(f"file:{self.directory / 'store' / 'cache.db'}?mode=ro", uri=True,
                                          check_same_thread=False)
        except StoreError:
            raise
        except Exception as exc:  # OSError, sqlite3.Error
            raise StoreError(f"cannot open the store in {self.directory}: {exc}") from exc

    def close(self) -> None:
        """Close the store and release the directory; closing twice is harmless."""
        self._pages.close()
        self._cache.close()
        self._hot.clear()
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self._writing(), self._cache.transact():
                yield
        except BaseException:
            self._hot.clear()  # the disk rolled back; forget what the cache saw inside
            raise

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A full disk raises StorageFull (507) instead of an unnamed SQLite error; so does any
        write but an essential one while the store is over its budget."""
        if self.over_budget and not self._essential:
            self.on_refused("store_budget")
            raise StorageFull(f"the edge's store holds more than its budget (EDGE_STORE_MAX_BYTES={self.max_bytes}) "
                              f"in records that are never evicted; the write was refused, deletions and "
                              f"withdrawals still succeed")
        try:
            yield
        except StorageFull:
            raise
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            self.full = True
            self.on_refused("disk_full")
            raise StorageFull(f"the edge's disk is full ({exc}); the write was refused, deletions and "
                              f"withdrawals still succeed") from exc

    # --- typed records -------------------------------------------------------------------
    def _raw(self, key: str) -> bytes | None:
        if not key.startswith(HOT_PREFIXES):
            return self._cache.get(key)
        entry = self._hot.get(key)
        if entry is not None and (entry[1] is None or entry[1] > time.time()):
            self._hot.move_to_end(key)
            return entry[0]
        raw, expires = self._cache.get(key, expire_time=True)
        self._remember(key, raw, expires)
        return raw

    def ttl_left(self, key: str) -> float | None:
        """Seconds until ``key`` expires (None: never, or no such key); a rewrite keeps this."""
        raw, expires = self._cache.get(key, expire_time=True)
        return None if raw is None or expires is None else max(0.001, expires - time.time())

    def get(self, key: str, cls: type[T]) -> T | None:
        raw = self._raw(key)
        # Decoded afresh on every read: callers may change what they get.
        return None if raw is None else _decoder(cls).decode(raw)

    @contextlib.contextmanager
    def essential(self) -> Iterator[None]:
        """Writes that must succeed (erasures): never refused for the size budget."""
        before, self._essential = self._essential, True
        try:
            yield
        finally:
            self._essential = before

    def put(self, key: str, record: Stored, *, ttl: float | None, tag: str | None = None) -> None:
        raw = _encoder.encode(record)
        with self._writing():
            self._cache.set(key, raw, expire=ttl, tag=tag)
        if key.startswith(HOT_PREFIXES):
            self._remember(key, raw, None if ttl is None else time.time() + ttl)

    def delete(self, key: str) -> bool:
        self._hot.pop(key, None)
        with self._writing():
            return bool(self._cache.delete(key))

    def _remember(self, key: str, raw: bytes | None, expires: float | None) -> None:
        self._hot[key] = (raw, expires)
        self._hot.move_to_end(key)
        if len(self._hot) > self._hot_max:
            self._hot.popitem(last=False)

    def keys(self, prefix: str) -> list[str]:
        """The committed, unexpired keys that start with ``prefix`` (one range read of the index)."""
        rows = self._pages.execute(
            "SELECT key FROM Cache WHERE key >= ? AND key < ? AND raw = 1 AND (expire_time IS NULL OR expire_time > ?)",
            (prefix, prefix + "\U0010ffff", time.time())).fetchall()
        return [row[0] for row in rows]

    # --- per user (keys hold pseudonymized ids only) --------------------------------------
    def consent(self, subject: str) -> Consent:
        return self.get(f"consent|{subject}", Consent) or Consent()

    def put_consent(self, subject: str, consent: Consent) -> None:
        self.put(f"consent|{subject}", consent, ttl=self.retention_s)

    def profile(self, subject: str) -> Profile | None:
        return self.get(f"profile|{subject}", Profile)

    def put_profile(self, subject: str, profile: Profile) -> None:
        """Kept for the retention period, but never past the consent record that allows it."""
        _, consent_expires = self._cache.get(f"consent|{subject}", expire_time=True)
        # diskcache expiry is wall-clock time, so this compares with the wall clock too.
        ttl = self.retention_s if consent_expires is None else min(self.retention_s, consent_expires - time.time())
        if ttl <= 0:
            self.delete(f"profile|{subject}")
            return
        self.put(f"profile|{subject}", profile, ttl=ttl, tag=_cold("profile"))

    def shown(self, subject: str) -> Shown | None:
        return self.get(f"shown|{subject}", Shown)

    def put_shown(self, subject: str, shown: Shown) -> None:
        self.put(f"shown|{subject}", shown, ttl=self.retention_s)

    def versions(self, subject: str) -> tuple[bytes | None, bytes | None]:
        """The stored bytes of the user's consent and profile: the same objects until either
        is written or deleted, so a caller can tell cheaply whether anything changed."""
        return self._raw(f"consent|{subject}"), self._raw(f"profile|{subject}")

    def suppression(self, subject: str) -> Suppression | None:
        return self.get(f"suppressed|{subject}", Suppression)

    def suppress(self, subject: str, suppression: Suppression) -> None:
        self.put(f"suppressed|{subject}", suppression, ttl=self.retention_s)

    # --- identity: anonymous ids linked to known users --------------------------------------
    def alias(self, subject: str) -> Alias | None:
        """The link of an anonymous id (its pseudonym) to a known user, if any."""
        return self.get(f"alias|{subject}", Alias)

    def aliases_of(self, subject: str) -> list[str]:
        """The pseudonyms of every anonymous id linked to this user."""
        index = self.get(f"aliases|{subject}", Keys)
        return list(index.keys) if index else []

    def link(self, alias: str, user: str, at: float) -> None:
        """Record a link (call inside a transaction); both records live as long as consent does."""
        self.put(f"alias|{alias}", Alias(user=user, at=at), ttl=self.retention_s)
        index = self.get(f"aliases|{user}", Keys) or Keys()
        if alias not in index.keys:
            index.keys.append(alias)
        self.put(f"aliases|{user}", index, ttl=self.retention_s)

    def unlink(self, alias: str) -> None:
        """Forget one link (call inside a transaction)."""
        link = self.alias(alias)
        if link is None:
            return
        self.delete(f"alias|{alias}")
        index = self.get(f"aliases|{link.user}", Keys)
        if index is not None and alias in index.keys:
            index.keys.remove(alias)
            self.put(f"aliases|{link.user}", index, ttl=self.retention_s)

    def unlink_all(self, user: str) -> list[str]:
        """Forget every link to this user; returns the aliases' pseudonyms."""
        aliases = self.aliases_of(user)
        for alias in aliases:
            self.delete(f"alias|{alias}")
        self.delete(f"aliases|{user}")
        return aliases

    def erase_user(self, subject: str) -> list[str]:
        """Delete the user's per-user records; returns what existed and was erased."""
        erased = [kind for kind in ("profile", "consent") if self.delete(f"{kind}|{subject}")]
        if self.delete(f"shown|{subject}"):
            erased.append("recent_reasons")
        if self.delete(f"explored|{subject}"):
            erased.append("explored_items")
        if self.forget_samples(subject):
            erased.append("quality_samples")
        return erased

    # --- sampled predictions (texts for review), indexed by user ---------------------------
    MAX_SAMPLES_PER_USER = 100

    def put_sample(self, subject: str, sample_id: str, sample: Stored) -> None:
        with self.transaction():
            index = self.get(f"samples|{subject}", Keys) or Keys()
            index.keys.append(sample_id)
            for old in index.keys[:-self.MAX_SAMPLES_PER_USER]:  # bounded per user: the oldest go first
                self.delete(f"sample|{old}")
            index.keys = index.keys[-self.MAX_SAMPLES_PER_USER:]
            self.put(f"sample|{sample_id}", sample, ttl=self.retention_s, tag=_cold("sample"))
            self.put(f"samples|{subject}", index, ttl=self.retention_s)

    def forget_samples(self, subject: str) -> int:
        """Erase every sampled text of the user; returns how many there were."""
        index = self.get(f"samples|{subject}", Keys)
        if index is None:
            return 0
        removed = sum(self.delete(f"sample|{sample_id}") for sample_id in index.keys)
        self.delete(f"samples|{subject}")
        return removed

    # --- privacy requests waiting to be filed with the control plane ----------------------
    # One record per filing under a sequence number (``outbox|<seq>``), plus the request id's
    # sequence (``outboxid|<id>``) and three counters: enqueueing and filing are O(1), however
    # long the queue. ``outbox_max`` bounds it: past it a new filing raises OutboxFull.

    def _counter(self, name: str) -> int:
        return int(self._cache.get(f"value|{name}", 0))

    def queue_request(self, request: PrivacyRequest) -> None:
        """Queue a request (call inside the transaction that applied it locally, so a full
        outbox refuses the whole change)."""
        pending = self._counter("outbox_pending")
        if pending >= self.outbox_max:
            raise OutboxFull(f"{pending} privacy requests wait to be filed with the control plane "
                             f"(EDGE_PRIVACY_OUTBOX_MAX={self.outbox_max}); nothing was changed, retry later")
        seq = self._counter("outbox_tail")
        self.put(f"outbox|{seq:012d}", request, ttl=None)
        self._cache.set(f"outboxid|{request.request_id}", seq)
        self._cache.set("value|outbox_tail", seq + 1)
        self._cache.set("value|outbox_pending", pending + 1)

    def queued_requests(self, after: int = -1, limit: int = 500) -> list[tuple[int, PrivacyRequest]]:
        """Up to ``limit`` queued requests with a sequence number over ``after``, oldest first."""
        found: list[tuple[int, PrivacyRequest]] = []
        seq, tail = max(after + 1, self._counter("outbox_head")), self._counter("outbox_tail")
        while seq < tail and len(found) < limit:
            request = self.get(f"outbox|{seq:012d}", PrivacyRequest)
            if request is not None:
                found.append((seq, request))
            seq += 1
        return found

    def outbox_pending(self) -> int:
        return self._counter("outbox_pending")

    def oldest_queued_at(self) -> float | None:
        """When the oldest request still waiting to be filed was made (None: none waits). The
        head counter is moved past filed requests, so this is one read."""
        seq, tail = self._counter("outbox_head"), self._counter("outbox_tail")
        while seq < tail:
            request = self.get(f"outbox|{seq:012d}", PrivacyRequest)
            if request is not None:
                return request.at
            seq += 1
        return None

    def filed(self, request_id: str) -> None:
        """The control plane has the request: drop it from the queue."""
        with self.transaction():
            seq = self._cache.get(f"outboxid|{request_id}")
            if seq is None or not self.delete(f"outbox|{seq:012d}"):
                return
            self._cache.delete(f"outboxid|{request_id}")
            self._cache.set("value|outbox_pending", max(self._counter("outbox_pending") - 1, 0))
            head, tail = self._counter("outbox_head"), self._counter("outbox_tail")
            while head < tail and f"outbox|{head:012d}" not in self._cache:
                head += 1  # amortized O(1): each sequence number is passed once
            self._cache.set("value|outbox_head", head)

    # --- small named values (sync cursors and the like) -----------------------------------
    def value(self, name: str, default=None):
        return self._cache.get(f"value|{name}", default)

    def set_value(self, name: str, value) -> None:
        with self._writing():
            self._cache.set(f"value|{name}", value)

    # --- housekeeping ---------------------------------------------------------------------
    def expire(self) -> int:
        """Remove records whose TTL ran out (reads already ignore them)."""
        with self._writing():
            return self._cache.expire()

    # --- size budget ----------------------------------------------------------------------
    def used_bytes(self) -> int:
        """Bytes of the database in use (pages minus free pages): what the budget counts."""
        page_count = self._pages.execute("PRAGMA page_count").fetchone()[0]
        free = self._pages.execute("PRAGMA freelist_count").fetchone()[0]
        return (page_count - free) * self._pages.execute("PRAGMA page_size").fetchone()[0]

    def enforce_budget(self) -> dict[str, int]:
        """Evict cold records, least recently written first (by second), until the store is
        within its budget; returns how many of each kind went. Sets ``over_budget`` when it
        cannot. Finding the oldest second is one seek on diskcache's tag index."""
        evicted = {kind: 0 for kind in COLD_KINDS}
        if not self.max_bytes:
            return evicted
        if self.used_bytes() > self.max_bytes:
            self.expire()
        while self.used_bytes() > self.max_bytes:
            oldest = self._oldest_cold()
            if oldest is None:
                break
            for kind in COLD_KINDS:  # that second's sampled texts, then its profiles
                evicted[kind] += self._cache.evict(f"{kind}:{oldest}")
        if any(evicted.values()):
            self._hot.clear()
        self.over_budget = self.used_bytes() > self.max_bytes
        return evicted

    def _oldest_cold(self) -> str | None:
        found = [row[0].split(":", 1)[1] for kind in COLD_KINDS for row in self._pages.execute(
            "SELECT tag FROM Cache WHERE tag >= ? AND tag < ? ORDER BY tag LIMIT 1", (f"{kind}:", f"{kind};"))]
        return min(found) if found else None

    cold_tag = staticmethod(_cold)

    def secret(self, name: str) -> bytes:
        """A random per-data-dir secret, created on first use and kept."""
        key = f"secret|{name}"
        with self.transaction():
            value = self._cache.get(key)
            if value is None:
                value = secrets.token_bytes(32)
                self._cache.set(key, value)
        return value

    def stored_secret(self, name: str) -> bytes | None:
        return self._cache.get(f"secret|{name}")

    def forget_secret(self, name: str) -> None:
        self._cache.delete(f"secret|{name}")

    def __len__(self) -> int:
        return len(self._cache)
