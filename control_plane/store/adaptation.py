"""Federated head adaptation: jobs (a JSON body, compare-and-set by round so one replica
advances each), the edges' updates (one per job, round and node: a resent answer changes
nothing), the privacy ledger (every round's noise multiplier, per model lineage) and the
adaptation candidates that wait for an operator's signature."""

from __future__ import annotations

from control_plane.store.database import Repository


class AdaptationStore(Repository):
    def add_adaptation(self, job_id: str, name: str, body: str, sigmas: list[float], now: float) -> bool:
        """Store a new running job and reserve its rounds in the ledger; False when the name
        already has a running job."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM adaptation_jobs WHERE name = ? AND state IN ('running', 'building')",
                          (name,)).fetchone() is not None:
                return False
            db.execute("INSERT INTO adaptation_jobs (job_id, name, state, round, body, created_at, updated_at) "
                       "VALUES (?, ?, 'running', 0, ?, ?, ?)", (job_id, name, body, now, now))
            db.executemany("INSERT INTO privacy_budget (lineage, job_id, round, sigma, at) VALUES (?, ?, ?, ?, ?)",
                           [(name, job_id, r, sigma, now) for r, sigma in enumerate(sigmas)])
            return True

    def adaptation_bodies(self, *, name: str = "", job_id: str = "", state: str = "") -> list[str]:
        where, args = [], []
        if name:
            where.append("name = ?")
            args.append(name)
        if job_id:
            where.append("job_id = ?")
            args.append(job_id)
        if state:
            where.append("state = ?")
            args.append(state)
        sql = "SELECT body FROM adaptation_jobs" + (" WHERE " + " AND ".join(where) if where else "")
        return [r[0] for r in self._rows(sql + " ORDER BY created_at", tuple(args))]

    def adaptation_active(self) -> bool:
        """Whether any job has a round open or a candidate being written (asked on every heartbeat)."""
        return bool(self._rows("SELECT 1 FROM adaptation_jobs WHERE state IN ('running', 'building') LIMIT 1"))

    def update_adaptation(self, job_id: str, body: str, state: str, round_: int, *, expected_state: str,
                          expected_round: int, now: float) -> bool:
        with self._tx() as db:
            return db.execute("UPDATE adaptation_jobs SET body = ?, state = ?, round = ?, updated_at = ? "
                              "WHERE job_id = ? AND state = ? AND round = ?",
                              (body, state, round_, now, job_id, expected_state, expected_round)).rowcount == 1

    def put_adaptation_update(self, job_id: str, round_: int, node_id: str, status: str, count: int, body: str,
                              now: float) -> bool:
        with self._tx() as db:
            return db.execute(
                "INSERT INTO adaptation_updates (job_id, round, node_id, status, count, body, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, round, node_id) DO NOTHING",
                (job_id, round_, node_id, status, count, body, now)).rowcount == 1

    def adaptation_updates(self, job_id: str, round_: int) -> list[tuple[str, str, int, str]]:
        """(node, status, count, body) of one round."""
        return [(r[0], r[1], int(r[2]), r[3]) for r in self._rows(
            "SELECT node_id, status, count, body FROM adaptation_updates WHERE job_id = ? AND round = ? "
            "ORDER BY node_id", (job_id, round_))]

    def answered(self, job_id: str, round_: int, node_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM adaptation_updates WHERE job_id = ? AND round = ? AND node_id = ?",
                               (job_id, round_, node_id)))

    def prune_adaptation_updates(self, job_id: str) -> None:
        """A finished job's per-edge updates are not kept (its history holds the aggregates)."""
        with self._tx() as db:
            db.execute("DELETE FROM adaptation_updates WHERE job_id = ?", (job_id,))

    def privacy_spend(self) -> dict[str, list[float]]:
        """Every reserved round's noise multiplier, per lineage."""
        out: dict[str, list[float]] = {}
        for lineage, sigma in self._rows("SELECT lineage, sigma FROM privacy_budget ORDER BY at"):
            out.setdefault(lineage, []).append(float(sigma))
        return out

    # --- candidates awaiting a signature ------------------------------------------------------
    def mark_unsigned(self, manifest_sha: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO unsigned_models (manifest_sha) VALUES (?) ON CONFLICT DO NOTHING", (manifest_sha,))

    def unsigned(self, manifest_sha: str) -> bool:
        return bool(self._rows("SELECT 1 FROM unsigned_models WHERE manifest_sha = ?", (manifest_sha,)))

    def replace_signed_bundle(self, manifest_sha: str, data: bytes, bundle_sha: str) -> None:
        """The operator signed a candidate: its tar (now with signature.json) replaces the unsigned one."""
        with self._tx() as db:
            db.execute("UPDATE bundles SET data = ? WHERE manifest_sha = ?", (data, manifest_sha))
            db.execute("UPDATE models SET bundle_sha = ?, size = ? WHERE manifest_sha = ?",
                       (bundle_sha, len(data), manifest_sha))
            db.execute("DELETE FROM unsigned_models WHERE manifest_sha = ?", (manifest_sha,))
