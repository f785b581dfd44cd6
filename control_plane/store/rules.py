"""Cohort trigger rules and their history; experiments and their per-window counts."""

from __future__ import annotations

from control_plane.store.database import Repository


class RuleStore(Repository):
    # --- cohort trigger rules ---------------------------------------------------------------
    def put_rule(self, name: str, body: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO rules (name, body, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                       "SET body = excluded.body, updated_at = excluded.updated_at", (name, body, now))
            db.execute("INSERT INTO rule_history (at, node_id, rule, cohort, event, value) VALUES (?, '', ?, '', "
                       "'added', 0)", (now, name))

    def remove_rule(self, name: str, now: float) -> bool:
        with self._tx() as db:
            if db.execute("DELETE FROM rules WHERE name = ?", (name,)).rowcount != 1:
                return False
            db.execute("INSERT INTO rule_history (at, node_id, rule, cohort, event, value) VALUES (?, '', ?, '', "
                       "'removed', 0)", (now, name))
            return True

    def rules(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT body FROM rules ORDER BY name")]

    def rules_version(self) -> int:
        """Grows with every operator change to the rules (replicas see each other's)."""
        return self._rows("SELECT COALESCE(MAX(id), 0) FROM rule_history WHERE node_id = ''")[0][0]

    def rule_event(self, at: float, node_id: str, rule: str, cohort: str, event: str, value: float) -> None:
        with self._tx() as db:
            # A resent heartbeat (no receipt reached the edge) reports the same event again: kept once.
            db.execute("INSERT INTO rule_history (at, node_id, rule, cohort, event, value) VALUES (?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (node_id, rule, cohort, at, event) WHERE node_id <> '' DO NOTHING",
                       (at, node_id, rule, cohort, event, value))

    def rule_history(self, limit: int) -> list[tuple]:
        return self._rows("SELECT at, node_id, rule, cohort, event, value FROM rule_history ORDER BY id DESC LIMIT ?",
                          (limit,))

    # --- experiments ------------------------------------------------------------------------
    def put_experiment(self, name: str, body: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO experiments (name, body, created_at) VALUES (?, ?, ?)", (name, body, now))

    def experiments(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT body FROM experiments ORDER BY name")]

    def experiments_version(self) -> int:
        return self._rows("SELECT COUNT(*) FROM experiments")[0][0]

    def put_experiment_counts(self, node_id: str, rows: list[tuple]) -> None:
        """(window, experiment, arm, cohort, exposures, clicks, conversions, value[, tenant]); a
        resend replaces. Without a tenant: a row from before tenants (tenant '')."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO experiment_counts (window_start, experiment, arm, cohort, node_id, exposures, clicks, "
                "conversions, value, tenant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(tenant, window_start, experiment, arm, cohort, node_id) DO UPDATE SET "
                "exposures = excluded.exposures, "
                "clicks = excluded.clicks, conversions = excluded.conversions, value = excluded.value",
                [(w, e, a, c, node_id, n, k, x, v, t[0] if t else "") for w, e, a, c, n, k, x, v, *t in rows])

    def experiment_cohorts(self, node_id: str, tenant: str, window_start: int) -> set[str]:
        """The cohort keys a node holds experiment counts of in one tenant's window."""
        return {r[0] for r in self._rows("SELECT DISTINCT cohort FROM experiment_counts WHERE node_id = ? AND "
                                         "tenant = ? AND window_start = ?", (node_id, tenant, window_start))}

    def experiment_counts_by_node(self, name: str, tenants: list[str] | None = None,
                                  ) -> list[tuple[str, str, str, int, int, float]]:
        """(arm, cohort, node, exposures, conversions, value), summed over windows (and over
        ``tenants`` when given, else over every tenant)."""
        where, params = "experiment = ?", [name]
        if tenants is not None:
            where += f" AND tenant IN ({', '.join('?' for _ in tenants)})"
            params += tenants
        return [(r[0], r[1], r[2], int(r[3]), int(r[4]), float(r[5])) for r in self._rows(
            "SELECT arm, cohort, node_id, SUM(exposures), SUM(conversions), SUM(value) FROM experiment_counts "
            f"WHERE {where} GROUP BY arm, cohort, node_id", tuple(params))]

    def experiment_counts(self, name: str) -> list[tuple[str, str, int, int, float]]:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self._rows(
            "SELECT arm, cohort, SUM(exposures), SUM(conversions), SUM(value) FROM experiment_counts "
            "WHERE experiment = ? GROUP BY arm, cohort", (name,))]
