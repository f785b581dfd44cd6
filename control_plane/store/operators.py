"""Operator tokens (hashes only) and the audit log."""

from __future__ import annotations

from control_plane.store.database import Repository


class OperatorStore(Repository):
    # --- operator tokens and audit ------------------------------------------------------------
    def add_token(self, name: str, token_sha256: str, now: float) -> bool:
        with self._tx() as db:
            row = db.execute("SELECT revoked_at FROM tokens WHERE name = ?", (name,)).fetchone()
            if row is not None and not row[0]:
                return False
            db.execute("INSERT INTO tokens (name, token_sha256, created_at, revoked_at) VALUES (?, ?, ?, 0) "
                       "ON CONFLICT (name) DO UPDATE SET token_sha256 = excluded.token_sha256, "
                       "created_at = excluded.created_at, revoked_at = 0", (name, token_sha256, now))
            return True

    def token_name(self, token_sha256: str) -> str | None:
        rows = self._rows("SELECT name FROM tokens WHERE token_sha256 = ? AND revoked_at = 0", (token_sha256,))
        return rows[0][0] if rows else None

    def tokens(self) -> list[tuple[str, float, float]]:
        return [(r[0], r[1], r[2]) for r in self._rows("SELECT name, created_at, revoked_at FROM tokens ORDER BY name")]

    def revoke_token(self, name: str, now: float) -> bool:
        with self._tx() as db:
            return db.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at = 0",
                              (now, name)).rowcount == 1

    def audit(self, at: float, who: str, action: str, detail: str, ok: bool) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO audit (at, who, action, detail, ok) VALUES (?, ?, ?, ?, ?)",
                       (at, who, action, detail, int(ok)))

    def audit_entries(self, limit: int) -> list[tuple[float, str, str, str, bool]]:
        return [(r[0], r[1], r[2], r[3], bool(r[4])) for r in self._rows(
            "SELECT at, who, action, detail, ok FROM audit ORDER BY id DESC LIMIT ?", (limit,))]
