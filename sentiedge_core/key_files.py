"""Secret files and the pseudonym key a store was written with.

Every user id is stored as its keyed hash, so a store is only readable with the key it was
written with: a node started with another key would orphan every user (and a later deletion
would miss their records). The store keeps a fingerprint of its key (an HMAC of a constant,
which does not reveal the key) and the node refuses to start when the key it has does not
match. A generated key lives in its own 0600 file next to the store, never inside it.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
from pathlib import Path

FINGERPRINT_LABEL = b"sentiedge pseudonym key fingerprint v1"


def private_dir(path: Path) -> Path:
    """Create (or tighten) a directory only its owner can enter: mode 0700."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Make sure a file exists with mode 0600 before a library opens it: SQLite then gives its
    -wal and -shm files the same mode."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    path.chmod(0o600)
    return path


def lock_exclusively(path: Path) -> int | None:
    """An exclusive lock on ``path`` (created 0600) held by the returned descriptor until it is
    closed or the process ends (kill -9 included); None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def read_or_create_key(path: Path, *, legacy: bytes | None = None) -> bytes:
    """The key in ``path``; created (0600, written atomically) from ``legacy`` or at random."""
    if path.exists():
        return path.read_bytes().strip()
    value = legacy or secrets.token_hex(32).encode()
    scratch = path.with_suffix(".tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(scratch, path)
    return value


def fingerprint(key: bytes) -> str:
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def mismatch(stored: str | None, key: bytes, *, setting: str) -> str | None:
    """Why ``key`` cannot be used with a store whose fingerprint is ``stored`` (None: it can)."""
    if stored is None or hmac.compare_digest(stored, fingerprint(key)):
        return None
    return (f"the pseudonym key does not match the one this store was written with (fingerprint "
            f"{fingerprint(key)}, the store's {stored}): every user would be orphaned. Start with the "
            f"{setting} the store was written with (or without it, if it never had one), or move the data "
            f"directory away to start afresh")


def missing(stored: str, *, setting: str) -> str:
    return (f"this store was written with {setting} set (key fingerprint {stored}) and none is set now: every "
            f"user would be orphaned. Start with the same {setting}, or move the data directory away to start afresh")


class KeyRefused(ValueError):
    """The key a service has is not the one its store was written with (the message says why)."""


def choose_key(configured: str, path: Path, *, legacy: bytes | None, fingerprint: str | None,
               setting: str) -> bytes:
    """The configured key, else the generated one in ``path`` (created from ``legacy``, a key
    older versions kept inside the store, or at random); refused with KeyRefused when it does
    not match the store's ``fingerprint``, or when the store was written with a configured key
    and none is configured now."""
    if configured:
        key = configured.encode()
    elif path.exists() or legacy or fingerprint is None:
        key = read_or_create_key(path, legacy=legacy)
    else:
        raise KeyRefused(missing(fingerprint, setting=setting))
    why = mismatch(fingerprint, key, setting=setting)
    if why is not None:
        raise KeyRefused(why)
    return key
