"""Topics per tenant and their history (migration 9): one row per tenant and topic, every
operator change appended to ``topic_history``, whose ids are the versions (a replica sees
another's change as a larger id)."""

from __future__ import annotations

from control_plane.store.database import Repository


class TopicStore(Repository):
    def put_topics(self, tenant: str, bodies: dict[str, str], event: str, now: float) -> None:
        """Add or replace topics of one tenant (name → JSON body) in one transaction."""
        with self._tx() as db:
            for name, body in bodies.items():
                db.execute("INSERT INTO topics (tenant, name, body, updated_at) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (tenant, name) DO UPDATE SET body = excluded.body, "
                           "updated_at = excluded.updated_at", (tenant, name, body, now))
                db.execute("INSERT INTO topic_history (tenant, name, event, at) VALUES (?, ?, ?, ?)",
                           (tenant, name, event, now))

    def remove_topic(self, tenant: str, name: str, now: float) -> bool:
        with self._tx() as db:
            if db.execute("DELETE FROM topics WHERE tenant = ? AND name = ?", (tenant, name)).rowcount != 1:
                return False
            db.execute("INSERT INTO topic_history (tenant, name, event, at) VALUES (?, ?, 'removed', ?)",
                       (tenant, name, now))
            return True

    def topics(self, tenant: str | None = None) -> list[tuple[str, str]]:
        """(tenant, body) of every topic, or of one tenant's, by tenant and name."""
        if tenant is None:
            return [(r[0], r[1]) for r in self._rows("SELECT tenant, body FROM topics ORDER BY tenant, name")]
        return [(r[0], r[1]) for r in self._rows("SELECT tenant, body FROM topics WHERE tenant = ? ORDER BY name",
                                                 (tenant,))]

    def topic_versions(self) -> dict[str, int]:
        """Per tenant that ever had a topic, the id of its latest change (its set's version)."""
        return {r[0]: int(r[1]) for r in self._rows("SELECT tenant, MAX(id) FROM topic_history GROUP BY tenant")}

    def topics_version(self) -> int:
        """Grows with every change to any tenant's topics."""
        return int(self._rows("SELECT COALESCE(MAX(id), 0) FROM topic_history")[0][0])
