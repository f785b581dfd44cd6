"""Room on a full disk for what must not fail: deletions and consent withdrawals.

SQLite needs free pages (WAL frames) even to delete, so on a full disk an erasure would fail
like any write. The edge keeps a reserve file (``EDGE_DISK_RESERVE_MB``, allocated for real)
in its data directory. When the store reports the disk full, other writes are refused with
507 and readiness turns false; a deletion or withdrawal releases the reserve and retries, so
it still succeeds. When space returns, the reserve is re-created and the edge is ready again.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger("edge_node")


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return "full" in str(exc)  # SQLITE_FULL: "database or disk is full"
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class DiskReserve:
    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def held(self) -> bool:
        return self.path.exists() and self.path.stat().st_size >= self.size

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path.parent).free

    def ensure(self) -> bool:
        """Hold the reserve; True when it is held. Only taken when twice its size is free, so
        re-creating it never fills the disk by itself."""
        if self.size <= 0 or self.held:
            return True
        if self.free_bytes() < 2 * self.size:
            return False
        scratch = self.path.with_suffix(".tmp")
        try:
            fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse file
            finally:
                os.close(fd)
            os.replace(scratch, self.path)
            return True
        except OSError as exc:
            scratch.unlink(missing_ok=True)
            log.warning("cannot create the disk reserve %s: %s", self.path, exc)
            return False

    def release(self) -> bool:
        """Free the reserve for a write that must succeed; False when there was none."""
        if not self.path.exists():
            return False
        self.path.unlink()
        log.warning("the disk is full: released the %d MiB reserve for a deletion", self.size >> 20)
        return True
