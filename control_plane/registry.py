"""Model registry: content-addressed, immutable bundles; rollout, rollback, parking.

A push is a tar of a bundle directory. It is unpacked into a scratch directory (no path
may leave it), verified exactly as an edge would (every digest, the manifest, the golden
examples run through the model) and only then stored — in the database, so every
control-plane replica can serve it — under its manifest's sha256.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from control_plane.errors import BundleRejected, FailedPrecondition, NotFound
from control_plane.store import ModelRow, Rollout, Store
from edge_node import signing
from edge_node.bundle import MANIFEST, pack, sha256_file, unpack
from edge_node.errors import EdgeError


def bucket(node_id: str, name: str) -> int:
    """A node's sticky position 0..99 for a model name's percentage rollouts."""
    return int.from_bytes(hashlib.sha256(f"{name}|{node_id}".encode()).digest()[:4], "big") % 100


class Registry:
    def __init__(self, store: Store, directory: Path, trusted: list | None = None) -> None:
        self.store = store
        self.trusted = trusted or []
        self.directory = directory / "uploads"  # scratch space only
        self.directory.mkdir(parents=True, exist_ok=True)

    def accept(self, upload: Path, now: float) -> tuple[ModelRow, bool]:
        """Verify an uploaded tar and store it; returns the model and whether it is new."""
        from edge_node.inference import SentimentModel

        with tempfile.TemporaryDirectory(dir=self.directory) as scratch:
            bundle = Path(scratch) / "bundle"
            bundle.mkdir()
            try:
                unpack(upload, bundle)
            except EdgeError as exc:
                raise BundleRejected(exc.message) from exc
            if not (bundle / MANIFEST).is_file():
                raise BundleRejected(f"the bundle has no {MANIFEST}")
            try:
                if self.trusted:
                    signing.verify(bundle, self.trusted)
                model = SentimentModel(bundle, threads=1)  # digests, manifest, stages, golden examples
            except EdgeError as exc:
                raise BundleRejected(f"bundle refused: {exc.message}") from exc
            manifest_sha = sha256_file(bundle / MANIFEST)
            existing = self.store.model(name=model.name, version=model.version)
            if existing is not None and existing.manifest_sha != manifest_sha:
                raise BundleRejected(f"{model.name} {model.version} already exists with different content; "
                                     f"bundles are immutable: give this one a new version")
            tar = Path(scratch) / "bundle.tar"
            pack(bundle, tar)
            row = ModelRow(manifest_sha=manifest_sha, name=model.name, version=model.version,
                           bundle_sha=sha256_file(tar), size=tar.stat().st_size, pushed_at=now)
            self.store.put_bundle(manifest_sha, tar.read_bytes())  # before the row that announces it
            new = self.store.add_model(row)
            return (row if new else self.store.model(sha=manifest_sha)), new

    def rollout(self, name: str, version: str, percent: int, nodes: list[str], now: float) -> Rollout:
        model = self.store.model(name=name, version=version)
        if model is None:
            raise NotFound(f"no model {name} {version}; push it first (control-plane models list)")
        if not 0 <= percent <= 100:
            raise BundleRejected("percent must be 0..100")
        current = next((r for r in self.store.rollouts() if r.name == name), None)
        previous = current.current_sha if current and current.current_sha != model.manifest_sha else (
            current.previous_sha if current else "")
        rollout = Rollout(name=name, current_sha=model.manifest_sha, previous_sha=previous,
                          percent=percent or 100, nodes=sorted(set(nodes)), updated_at=now)
        self.store.clear_parked(model.manifest_sha)  # the operator acted: parked nodes may try again
        self.store.set_rollout(rollout)
        return rollout

    def rollback(self, name: str, now: float) -> Rollout:
        current = next((r for r in self.store.rollouts() if r.name == name), None)
        if current is None or not current.previous_sha:
            raise FailedPrecondition(f"{name} has no previous version to roll back to")
        rollout = Rollout(name=name, current_sha=current.previous_sha, previous_sha=current.current_sha,
                          percent=100, nodes=[], updated_at=now)
        self.store.clear_parked(current.previous_sha)
        self.store.set_rollout(rollout)
        return rollout

    def desired(self, node_id: str) -> ModelRow | None:
        """The model this node should serve, if any rollout targets it."""
        for rollout in self.store.rollouts():
            if rollout.nodes:
                targeted = node_id in rollout.nodes
            else:
                targeted = bucket(node_id, rollout.name) < rollout.percent
            sha = rollout.current_sha if targeted else rollout.previous_sha
            if sha:
                return self.store.model(sha=sha)
        return None
