"""Models and their bundles, rollouts (with their sticky picks), each node's bundled model
and its per-model state (serving, parked)."""

from __future__ import annotations

import json

import msgspec

from control_plane.store.database import Repository


class ModelRow(msgspec.Struct, kw_only=True):
    manifest_sha: str
    name: str
    version: str
    bundle_sha: str
    size: int
    pushed_at: float
    bundled: bool = False  # the node's own bundled model: not in the registry, nothing to download


class Rollout(msgspec.Struct, kw_only=True):
    name: str
    current_sha: str
    previous_sha: str
    percent: int
    nodes: list[str]
    updated_at: float


# Every read and write names its columns: rows are read by position, so a column a migration
# adds (at the end of a table) never shifts what a query returns.


MODELS_COLUMNS = "manifest_sha, name, version, bundle_sha, size, pushed_at"
ROLLOUTS_COLUMNS = "name, current_sha, previous_sha, percent, nodes, updated_at"
SELECT_MODELS = f"SELECT {MODELS_COLUMNS} FROM models"
SELECT_ROLLOUTS = f"SELECT {ROLLOUTS_COLUMNS} FROM rollouts"


class ModelStore(Repository):
    # --- models -----------------------------------------------------------------------------
    def add_model(self, row: ModelRow) -> bool:
        with self._tx() as db:
            cur = db.execute(f"INSERT INTO models ({MODELS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (row.manifest_sha, row.name, row.version, row.bundle_sha, row.size, row.pushed_at))
            return cur.rowcount == 1

    def put_bundle(self, manifest_sha: str, data: bytes) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO bundles (manifest_sha, data) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       (manifest_sha, data))

    def bundle_shas(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT manifest_sha FROM bundles ORDER BY manifest_sha")]

    def bundle_chunk(self, manifest_sha: str, offset: int, size: int) -> bytes:
        rows = self._rows("SELECT substr(data, ?, ?) FROM bundles WHERE manifest_sha = ?",
                          (offset + 1, size, manifest_sha))
        return bytes(rows[0][0]) if rows else b""

    def models(self) -> list[ModelRow]:
        return [ModelRow(manifest_sha=r[0], name=r[1], version=r[2], bundle_sha=r[3], size=r[4], pushed_at=r[5])
                for r in self._rows(f"{SELECT_MODELS} ORDER BY name, pushed_at")]

    def model(self, *, sha: str | None = None, name: str | None = None, version: str | None = None) -> ModelRow | None:
        if sha is not None:
            rows = self._rows(f"{SELECT_MODELS} WHERE manifest_sha = ?", (sha,))
        else:
            rows = self._rows(f"{SELECT_MODELS} WHERE name = ? AND version = ?", (name, version))
        return ModelRow(manifest_sha=rows[0][0], name=rows[0][1], version=rows[0][2], bundle_sha=rows[0][3],
                        size=rows[0][4], pushed_at=rows[0][5]) if rows else None

    def set_rollout(self, rollout: Rollout) -> None:
        with self._tx() as db:
            db.execute(f"INSERT INTO rollouts ({ROLLOUTS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (name) DO UPDATE SET "
                       "current_sha = excluded.current_sha, previous_sha = excluded.previous_sha, "
                       "percent = excluded.percent, nodes = excluded.nodes, updated_at = excluded.updated_at",
                       (rollout.name, rollout.current_sha, rollout.previous_sha, rollout.percent,
                        json.dumps(rollout.nodes), rollout.updated_at))

    def rollouts(self) -> list[Rollout]:
        return [Rollout(name=r[0], current_sha=r[1], previous_sha=r[2], percent=r[3], nodes=json.loads(r[4]),
                        updated_at=r[5]) for r in self._rows(f"{SELECT_ROLLOUTS} ORDER BY name")]

    def chosen(self, name: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT node_id FROM rollout_chosen WHERE name = ? ORDER BY node_id",
                                         (name,))]

    def set_chosen(self, name: str, nodes: list[str], *, replace: bool) -> None:
        with self._tx() as db:
            if replace:
                db.execute("DELETE FROM rollout_chosen WHERE name = ?", (name,))
            for node_id in nodes:
                db.execute("INSERT INTO rollout_chosen (name, node_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                           (name, node_id))

    def set_node_bundled(self, node_id: str, name: str, version: str, sha: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO node_bundled (node_id, name, version, manifest_sha) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (node_id) DO UPDATE SET "
                       "name = excluded.name, version = excluded.version, manifest_sha = excluded.manifest_sha",
                       (node_id, name, version, sha))

    def node_bundled(self, node_id: str) -> tuple[str, str, str] | None:
        rows = self._rows("SELECT name, version, manifest_sha FROM node_bundled WHERE node_id = ?", (node_id,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def set_node_model(self, node_id: str, sha: str, state: str, error: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO node_models (node_id, manifest_sha, state, error, at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (node_id, manifest_sha) DO UPDATE "
                       "SET state = excluded.state, error = excluded.error, at = excluded.at",
                       (node_id, sha, state, error, now))

    def node_model(self, node_id: str, sha: str) -> tuple[str, str] | None:
        rows = self._rows("SELECT state, error FROM node_models WHERE node_id = ? AND manifest_sha = ?", (node_id, sha))
        return (rows[0][0], rows[0][1]) if rows else None

    def clear_parked(self, sha: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM node_models WHERE manifest_sha = ? AND state = 'parked'", (sha,))
