"""The part of the store that says who may do what: client apps and node credentials.

Mixed into :class:`control_plane.store.Store` (same connection, same one-transaction-per-call
rule); kept apart so each file stays about one thing.
"""

from __future__ import annotations

from control_plane.store.database import Repository


class AccessStore(Repository):
    # --- client apps --------------------------------------------------------------------------
    def put_app(self, name: str, body: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO apps (name, body, revision, updated_at) VALUES (?, ?, 1, ?) ON CONFLICT (name) "
                       "DO UPDATE SET body = excluded.body, revision = apps.revision + 1, "
                       "updated_at = excluded.updated_at", (name, body, now))

    def app(self, name: str) -> str | None:
        rows = self._rows("SELECT body FROM apps WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def apps(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT body FROM apps ORDER BY name")]

    def apps_version(self) -> int:
        """Grows with every change to any app (replicas see each other's)."""
        return int(self._rows("SELECT COALESCE(SUM(revision), 0) FROM apps")[0][0])

    # --- node credentials -----------------------------------------------------------------------
    def add_enrollment(self, token_sha256: str, node_id: str, expires_at: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO enrollments (token_sha256, node_id, expires_at) VALUES (?, ?, ?)",
                       (token_sha256, node_id, expires_at))
            db.execute("INSERT INTO node_credentials (node_id) VALUES (?) ON CONFLICT (node_id) DO NOTHING",
                       (node_id,))

    def use_enrollment(self, token_sha256: str, node_id: str, secret_sha256: str, now: float) -> bool:
        """Spend a one-time token on the node it was issued for; store the node secret's hash."""
        with self._tx() as db:
            row = db.execute("SELECT node_id, expires_at, used_at FROM enrollments WHERE token_sha256 = ?",
                             (token_sha256,)).fetchone()
            if row is None or row[0] != node_id or row[1] < now or row[2]:
                return False
            db.execute("UPDATE enrollments SET used_at = ? WHERE token_sha256 = ?", (now, token_sha256))
            db.execute("UPDATE node_credentials SET secret_sha256 = ?, enrolled_at = ?, revoked_at = 0 "
                       "WHERE node_id = ?", (secret_sha256, now, node_id))
            return True

    def credential(self, node_id: str) -> tuple[str, float, float, bool] | None:
        """(secret hash, enrolled at, revoked at, quarantined) of a node, if it has a row."""
        rows = self._rows("SELECT secret_sha256, enrolled_at, revoked_at, quarantined FROM node_credentials "
                          "WHERE node_id = ?", (node_id,))
        return (rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3])) if rows else None

    def revoked_nodes(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT node_id FROM node_credentials WHERE revoked_at > 0")]

    def node_for_secret(self, secret_sha256: str) -> str | None:
        rows = self._rows("SELECT node_id FROM node_credentials WHERE secret_sha256 = ? AND revoked_at = 0",
                          (secret_sha256,))
        return rows[0][0] if rows else None

    def revoke_credential(self, node_id: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO node_credentials (node_id, revoked_at) VALUES (?, ?) ON CONFLICT (node_id) "
                       "DO UPDATE SET revoked_at = excluded.revoked_at, secret_sha256 = ''", (node_id, now))
            db.execute("DELETE FROM enrollments WHERE node_id = ? AND used_at = 0", (node_id,))

    def enrollment_pending(self, node_id: str, now: float) -> bool:
        """An enrollment token for the node that is neither spent nor expired."""
        return bool(self._rows("SELECT 1 FROM enrollments WHERE node_id = ? AND used_at = 0 AND expires_at > ?",
                               (node_id, now)))

    def set_quarantine(self, node_id: str, quarantined: bool) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO node_credentials (node_id, quarantined) VALUES (?, ?) ON CONFLICT (node_id) "
                       "DO UPDATE SET quarantined = excluded.quarantined", (node_id, int(quarantined)))

    def quarantined(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT node_id FROM node_credentials WHERE quarantined = 1")}
