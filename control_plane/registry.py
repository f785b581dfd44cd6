"""Model registry: content-addressed, immutable bundles; rollout, rollback, parking.

A push is a tar of a bundle directory. It is unpacked into a scratch directory (no path
may leave it), verified exactly as an edge would (every digest, the manifest, the golden
examples run through the model) and only then stored — in the database, so every
control-plane replica can serve it — under its manifest's sha256.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import msgspec

from control_plane.errors import BundleRejected, FailedPrecondition, InvalidArgument, NotFound
from control_plane.store import ModelRow, Rollout, Store
from sentiedge_core import signing
from sentiedge_core.bundle import MANIFEST, pack, sha256_file, unpack
from sentiedge_core.errors import SentiedgeError

BUNDLED = "bundled"  # a rollout's version meaning "each node's own bundled model"


class NodeModel(msgspec.Struct, kw_only=True):
    """What one node is assigned and serves, and where that stands."""

    node_id: str
    assigned: ModelRow | None
    serving: ModelRow  # a registry row, or one made from what the node says it serves
    state: str  # unassigned, serving, pending, stale, parked
    error: str = ""


class RolloutView(msgspec.Struct, kw_only=True):
    name: str
    rollout: Rollout | None
    current: ModelRow | None  # None for the bundled model (see current_bundled) or no rollout
    previous: ModelRow | None
    chosen: list[str]
    nodes: list[NodeModel]


def bucket(node_id: str, name: str) -> int:
    """A node's sticky position 0..99 for a model name's percentage rollouts."""
    return int.from_bytes(hashlib.sha256(f"{name}|{node_id}".encode()).digest()[:4], "big") % 100


class Registry:
    def __init__(self, store: Store, directory: Path, trusted: list | None = None) -> None:
        self.store = store
        self.trusted = trusted or []
        self.directory = directory / "uploads"  # scratch space only
        self.directory.mkdir(parents=True, exist_ok=True)

    def accept(self, upload: Path, now: float, *, candidate: bool = False) -> tuple[ModelRow, bool]:
        """Verify an uploaded tar and store it; returns the model and whether it is new.

        ``candidate``: an adaptation candidate the control plane wrote itself. Where keys are
        trusted it is stored unsigned and cannot be rolled out until the operator pushes it
        again signed (same manifest, plus signature.json), which replaces the stored tar."""
        from sentiedge_core.inference import SentimentModel

        with tempfile.TemporaryDirectory(dir=self.directory) as scratch:
            bundle = Path(scratch) / "bundle"
            bundle.mkdir()
            try:
                unpack(upload, bundle)
            except SentiedgeError as exc:
                raise BundleRejected(exc.message) from exc
            if not (bundle / MANIFEST).is_file():
                raise BundleRejected(f"the bundle has no {MANIFEST}")
            try:
                if self.trusted and not candidate:
                    signing.verify(bundle, self.trusted)
                model = SentimentModel(bundle, threads=1)  # digests, manifest, stages, golden examples
            except SentiedgeError as exc:
                raise BundleRejected(f"bundle refused: {exc.message}") from exc
            manifest_sha = sha256_file(bundle / MANIFEST)
            existing = self.store.model(name=model.name, version=model.version)
            if existing is not None and existing.manifest_sha != manifest_sha:
                raise BundleRejected(f"{model.name} {model.version} already exists with different content; "
                                     f"bundles are immutable: give this one a new version")
            tar = Path(scratch) / "bundle.tar"
            pack(bundle, tar)
            bundle_sha = sha256_file(tar)
            if existing is not None and self.trusted and not candidate and self.store.unsigned(manifest_sha):
                self.store.replace_signed_bundle(manifest_sha, tar.read_bytes(), bundle_sha)
                return self._stored(manifest_sha), False
            row = ModelRow(manifest_sha=manifest_sha, name=model.name, version=model.version,
                           bundle_sha=bundle_sha, size=tar.stat().st_size, pushed_at=now)
            if candidate and self.trusted:
                self.store.mark_unsigned(manifest_sha)  # before the row: never servable unsigned
            self.store.put_bundle(manifest_sha, tar.read_bytes())  # before the row that announces it
            new = self.store.add_model(row)
            return (row if new else self._stored(manifest_sha)), new

    def _stored(self, manifest_sha: str) -> ModelRow:
        row = self.store.model(sha=manifest_sha)
        assert row is not None, manifest_sha  # its row exists: checked, or written in this call
        return row

    def awaiting_signature(self, manifest_sha: str) -> bool:
        return bool(self.trusted) and self.store.unsigned(manifest_sha)

    def rollout(self, name: str, version: str, percent: int | None, nodes: list[str], now: float, *,
                allow_unknown: bool = False) -> tuple[Rollout, list[str]]:
        """Assign ``version``: to named nodes, to a sticky share of the fleet, or (None) to all.

        Returns the rollout and warnings for the operator. A percentage picks
        ``ceil(percent% of the fleet)`` nodes (so any share above 0 picks at least one), in a
        fixed per-name hash order, and keeps them as nodes join (see :meth:`targets`).
        """
        model = self.store.model(name=name, version=version)
        if model is None:
            raise NotFound(f"no model {name} {version}; push it first (control-plane models list)")
        if self.awaiting_signature(model.manifest_sha):
            raise FailedPrecondition(
                f"{name} {version} is an adaptation candidate awaiting a signature (CP_TRUSTED_KEYS is set): "
                f"control-plane models pull {name} {version} --out DIR, models sign DIR --key KEY, models push DIR")
        percent = 100 if percent is None else percent
        if not 0 <= percent <= 100:
            raise InvalidArgument("--percent must be 0..100")
        warnings = []
        unknown = sorted(set(nodes) - {n.node_id for n in self._fleet()})
        if unknown and not allow_unknown:
            raise InvalidArgument(f"unknown node(s) {', '.join(unknown)}: not registered with this control plane "
                                  f"(see control-plane nodes); pass --allow-unknown to assign them before they "
                                  f"first connect")
        if unknown:
            warnings.append(f"node(s) {', '.join(unknown)} have not connected yet: they take {version} when they do")
        current = next((r for r in self.store.rollouts() if r.name == name), None)
        if current is None:
            previous = BUNDLED  # what every node served before: its own bundled model
        elif current.current_sha != model.manifest_sha:
            previous = current.current_sha
        else:
            previous = current.previous_sha or BUNDLED
        rollout = Rollout(name=name, current_sha=model.manifest_sha, previous_sha=previous,
                          percent=percent, nodes=sorted(set(nodes)), updated_at=now)
        self.store.clear_parked(model.manifest_sha)  # the operator acted: parked nodes may try again
        self.store.set_rollout(rollout)
        self.store.set_chosen(name, [], replace=True)
        self.targets(rollout)
        if not nodes and percent == 0:
            warnings.append(f"--percent 0 assigns {version} to no node yet: widen it with a larger --percent")
        return rollout, warnings

    def rollback(self, name: str, now: float) -> Rollout:
        current = next((r for r in self.store.rollouts() if r.name == name), None)
        if current is None:
            raise FailedPrecondition(f"{name} has no rollout to roll back: every node serves its bundled model")
        previous = current.previous_sha or BUNDLED
        if previous == current.current_sha:
            raise FailedPrecondition(f"{name} has no previous version to roll back to")
        rollout = Rollout(name=name, current_sha=previous, previous_sha=current.current_sha,
                          percent=100, nodes=[], updated_at=now)
        if previous != BUNDLED:
            self.store.clear_parked(previous)
        self.store.set_rollout(rollout)
        self.store.set_chosen(name, [], replace=True)
        return rollout

    def _fleet(self) -> list:
        return [n for n in self.store.nodes() if not n.decommissioned]

    def targets(self, rollout: Rollout, fleet: list | None = None) -> set[str]:
        """The node ids that get the rollout's current version.

        Named nodes, or everyone at 100%; else the first ``ceil(percent% of N)`` nodes of the
        fleet in hash order, topped up (never reshuffled) as the fleet grows.
        """
        if rollout.nodes:
            return set(rollout.nodes)
        ids = [n.node_id for n in (self._fleet() if fleet is None else fleet)]
        if rollout.percent >= 100:
            return set(ids)
        want = math.ceil(rollout.percent * len(ids) / 100)
        chosen = set(self.store.chosen(rollout.name)) & set(ids)
        if len(chosen) < want:
            ranked = sorted((i for i in ids if i not in chosen), key=lambda i: (bucket(i, rollout.name), i))
            extra = ranked[: want - len(chosen)]
            self.store.set_chosen(rollout.name, extra, replace=False)
            chosen |= set(extra)
        return chosen

    def desired(self, node_id: str, fleet: list | None = None, *, rollouts: list[Rollout] | None = None,
                model_of: Callable[[str], ModelRow | None] | None = None) -> ModelRow | None:
        """The model this node should serve, if any rollout targets it. ``rollouts`` and
        ``model_of`` (a model row by manifest sha) stand in for the store's reads where given:
        read once for every stream (control_plane.snapshot)."""
        for rollout in self.store.rollouts() if rollouts is None else rollouts:
            sha = rollout.current_sha if self._targeted(rollout, node_id, fleet) else rollout.previous_sha
            if sha == BUNDLED or (not sha and rollout.current_sha):
                return self.bundled(node_id)
            if sha:
                return self.store.model(sha=sha) if model_of is None else model_of(sha)
        return None

    def _targeted(self, rollout: Rollout, node_id: str, fleet: list | None) -> bool:
        """Whether the node gets the current version; only a partial share needs the fleet."""
        if rollout.nodes:
            return node_id in rollout.nodes
        return rollout.percent >= 100 or node_id in self.targets(rollout, fleet)

    def bundled(self, node_id: str) -> ModelRow | None:
        """The bundle a node was installed with, as it said in its Hello."""
        ref = self.store.node_bundled(node_id)
        if ref is None or not ref[2]:
            return None
        return ModelRow(manifest_sha=ref[2], name=ref[0], version=ref[1], bundle_sha="", size=0, pushed_at=0.0,
                        bundled=True)

    def status(self, name: str, views: list) -> RolloutView:
        """The rollout of ``name`` (if any) and, for every registered node (``NodeView``s), what
        it is assigned and serves: serving, pending, stale (not heard from), parked (refused it)."""
        store = self.store
        rollout = next((r for r in store.rollouts() if r.name == name), None)
        if rollout is None and not any(r.name == name for r in store.models()) and not any(
                v.node.model_name == name for v in views):
            raise NotFound(f"no model {name!r}: not pushed and served by no node (control-plane models list)")
        views = [v for v in views if not v.node.decommissioned]
        fleet = [v.node for v in views]
        nodes = []
        for view in views:
            node = view.node
            desired = self.desired(node.node_id, fleet) if rollout else None
            parked = store.node_model(node.node_id, desired.manifest_sha) if desired else None
            parked = parked if parked and parked[0] == "parked" else None
            if desired is None:
                state = "unassigned"
            elif node.model_sha == desired.manifest_sha:
                state = "serving"
            elif parked:
                state = "parked"
            else:
                state = "stale" if view.state == "stale" else "pending"
            serving = (store.model(sha=node.model_sha) if node.model_sha else None) or ModelRow(
                manifest_sha=node.model_sha, name=node.model_name, version=node.model_version, bundle_sha="", size=0,
                pushed_at=0.0)
            nodes.append(NodeModel(node_id=node.node_id, assigned=desired, serving=serving, state=state,
                                   error=parked[1] if parked else ""))

        def row(sha: str) -> ModelRow | None:
            return None if not sha or sha == BUNDLED else store.model(sha=sha)

        return RolloutView(name=name, rollout=rollout, current=row(rollout.current_sha) if rollout else None,
                           previous=row(rollout.previous_sha) if rollout else None,
                           chosen=sorted(self.targets(rollout, fleet)) if rollout else [], nodes=nodes)
