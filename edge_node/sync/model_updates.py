"""Applying a model assignment safely: download (resumable), verify, load, warm up, swap.

A bundle arrives as a tar into ``<data_dir>/models/<manifest sha>.tar.part``; a broken
download resumes from the bytes already on disk. The tar's sha256 must match the
assignment, its manifest's sha256 must match the model's address, and the model must load
(every digest, then the golden examples) and warm up before it replaces the serving one.
Requests in flight finish on the old model; the old bundle stays on disk for an instant
rollback. Any failure leaves the current model serving and is reported as a NACK.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from edge_node.errors import EdgeError
from sentiedge_core import signing
from sentiedge_core.bundle import MANIFEST, sha256_file, unpack
from sentiedge_core.inference import SentimentModel

log = logging.getLogger("edge_node.models")


class ModelUpdates:
    def __init__(self, directory: Path, threads: int, trusted: list | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.threads = threads
        self.trusted = trusted or []  # Ed25519 keys; empty: signatures are not required

    def current(self) -> Path | None:
        """The last assigned bundle that was applied here, to start with when offline."""
        marker = self.directory / "current"
        if marker.exists():
            path = self.directory / marker.read_text().strip()
            if (path / MANIFEST).is_file():
                return path
        return None

    def _mark_current(self, sha: str) -> None:
        tmp = self.directory / "current.tmp"
        tmp.write_text(sha)
        tmp.replace(self.directory / "current")

    async def fetch(self, sha: str, bundle_sha: str, size: int,
                    download: Callable[[int], AsyncIterator[bytes]]) -> Path:
        """The bundle directory for ``sha``, downloading (or resuming) it if needed."""
        target = self.directory / sha
        if (target / MANIFEST).is_file():
            return target
        part = self.directory / f"{sha}.tar.part"
        offset = part.stat().st_size if part.exists() else 0
        if offset > size:
            part.unlink()
            offset = 0
        if offset < size:
            with part.open("ab") as fh:
                async for block in download(offset):
                    fh.write(block)
        if part.stat().st_size != size or sha256_file(part) != bundle_sha:
            part.unlink(missing_ok=True)
            raise EdgeError(f"downloaded bundle does not match its sha256 {bundle_sha[:12]}")
        scratch = self.directory / f"{sha}.unpacking"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            unpack(part, scratch)
            if sha256_file(scratch / MANIFEST) != sha:
                raise EdgeError(f"bundle manifest does not hash to its address {sha[:12]}")
        except Exception:
            shutil.rmtree(scratch, ignore_errors=True)
            part.unlink(missing_ok=True)
            raise
        scratch.rename(target)
        part.unlink(missing_ok=True)
        return target

    async def load(self, path: Path) -> SentimentModel:
        """Verify (signature, digests, golden examples) and load, off the event loop."""
        if self.trusted:
            signing.verify(path, self.trusted)
        return await asyncio.to_thread(SentimentModel, path, threads=self.threads)

    def applied_bundled(self) -> None:
        """Back on the installed bundle: a restart starts with it, not with the last assignment."""
        (self.directory / "current").unlink(missing_ok=True)
        log.info("now serving the bundled model")

    def applied(self, sha: str) -> None:
        self._mark_current(sha)
        log.info("now serving bundle %s", sha[:12])
