"""Webhooks per tenant, their durable outbox and delivery log, and the notified states they
follow: each topic trend's, and each trigger's per cohort (migration 9).

A notification is written to the outbox in the same transaction as the state change it
reports, so a restart neither loses nor repeats it; a sender claims a due row for a lease
(compare-and-set, so two replicas never send one notification at once) and records each
attempt in the log."""

from __future__ import annotations

from typing import NamedTuple

from control_plane.store.database import Repository


class Hook(NamedTuple):
    tenant: str
    url: str
    secret: str
    created_at: float
    updated_at: float


class Outgoing(NamedTuple):
    event_id: str
    tenant: str
    type: str
    body: str
    created_at: float
    state: str  # pending, delivered, failed, cancelled
    attempts: int
    next_at: float
    delivered_at: float
    last_error: str


class Notice(NamedTuple):
    """A notification to queue: its id, type and JSON body."""

    event_id: str
    type: str
    body: str


_OUTBOX = "event_id, tenant, type, body, created_at, state, attempts, next_at, delivered_at, last_error"


def _queue(db, tenant: str, notice: Notice, now: float) -> bool:
    """Queue ``notice`` for the tenant's webhook inside the caller's transaction; False (nothing
    queued) when the tenant has none."""
    return db.execute(
        f"INSERT INTO webhook_outbox ({_OUTBOX}) SELECT ?, ?, ?, ?, ?, 'pending', 0, ?, 0, '' "
        "WHERE EXISTS (SELECT 1 FROM webhooks WHERE tenant = ?) ON CONFLICT (event_id) DO NOTHING",
        (notice.event_id, tenant, notice.type, notice.body, now, now, tenant)).rowcount == 1


class WebhookStore(Repository):
    # --- the hooks ----------------------------------------------------------------------------
    def put_webhook(self, tenant: str, url: str, new_secret: str, now: float, rotate: bool) -> tuple[Hook, bool]:
        """Set the tenant's URL; a new hook (or ``rotate``) takes ``new_secret``, else the secret
        stays. Returns the hook and whether its secret is the new one."""
        with self._tx() as db:
            row = db.execute("SELECT secret, created_at FROM webhooks WHERE tenant = ?", (tenant,)).fetchone()
            fresh = row is None or rotate
            secret = new_secret if fresh else row[0]
            created = now if row is None else float(row[1])
            db.execute("INSERT INTO webhooks (tenant, url, secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (tenant) DO UPDATE SET url = excluded.url, secret = excluded.secret, "
                       "updated_at = excluded.updated_at", (tenant, url, secret, created, now))
            return Hook(tenant, url, secret, created, now), fresh

    def webhook(self, tenant: str) -> Hook | None:
        rows = self._rows("SELECT tenant, url, secret, created_at, updated_at FROM webhooks WHERE tenant = ?",
                          (tenant,))
        return Hook(*rows[0]) if rows else None

    def webhooks(self) -> list[Hook]:
        return [Hook(*r) for r in self._rows("SELECT tenant, url, secret, created_at, updated_at FROM webhooks "
                                             "ORDER BY tenant")]

    def remove_webhook(self, tenant: str, now: float) -> bool:
        """Forget the hook; what was still waiting for it is cancelled (kept in the log)."""
        with self._tx() as db:
            if db.execute("DELETE FROM webhooks WHERE tenant = ?", (tenant,)).rowcount != 1:
                return False
            db.execute("UPDATE webhook_outbox SET state = 'cancelled', last_error = 'webhook removed' "
                       "WHERE tenant = ? AND state = 'pending'", (tenant,))
            return True

    # --- the outbox ---------------------------------------------------------------------------
    def queue_notice(self, tenant: str, notice: Notice, now: float) -> bool:
        with self._tx() as db:
            return _queue(db, tenant, notice, now)

    def claim_due(self, now: float, lease_s: float, limit: int) -> list[Outgoing]:
        """Due pending notifications, each claimed for ``lease_s`` (another sender skips it)."""
        claimed = []
        with self._tx() as db:
            rows = db.execute(f"SELECT {_OUTBOX} FROM webhook_outbox WHERE state = 'pending' AND next_at <= ? "
                              "AND claimed_until < ? ORDER BY next_at LIMIT ?", (now, now, limit)).fetchall()
            for r in rows:
                if db.execute("UPDATE webhook_outbox SET claimed_until = ? WHERE event_id = ? AND state = 'pending' "
                              "AND claimed_until < ?", (now + lease_s, r[0], now)).rowcount == 1:
                    claimed.append(Outgoing(*r))
        return claimed

    def next_due(self) -> float | None:
        rows = self._rows("SELECT MIN(next_at) FROM webhook_outbox WHERE state = 'pending'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def record_attempt(self, n: Outgoing, *, at: float, url: str, status: int, error: str, duration_ms: float,
                       state: str, next_at: float) -> None:
        """One delivery attempt: logged, and the notification delivered, failed or due again."""
        with self._tx() as db:
            db.execute("INSERT INTO webhook_attempts (event_id, tenant, type, attempt, at, url, status, error, "
                       "duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (n.event_id, n.tenant, n.type, n.attempts + 1, at, url, status, error, duration_ms))
            db.execute("UPDATE webhook_outbox SET attempts = attempts + 1, state = ?, next_at = ?, claimed_until = 0, "
                       "delivered_at = ?, last_error = ? WHERE event_id = ? AND state = 'pending'",
                       (state, next_at, at if state == "delivered" else 0.0, error, n.event_id))

    def outbox(self, tenant: str | None, limit: int) -> list[Outgoing]:
        where, args = ("WHERE tenant = ? ", (tenant,)) if tenant else ("", ())
        return [Outgoing(*r) for r in self._rows(f"SELECT {_OUTBOX} FROM webhook_outbox {where}"
                                                 "ORDER BY created_at DESC LIMIT ?", (*args, limit))]

    def outbox_counts(self) -> dict[tuple[str, str], int]:
        """(tenant, state) → notifications."""
        return {(r[0], r[1]): int(r[2]) for r in self._rows("SELECT tenant, state, COUNT(*) FROM webhook_outbox "
                                                            "GROUP BY tenant, state")}

    def attempts(self, tenant: str | None, limit: int) -> list[tuple]:
        """(event_id, tenant, type, attempt, at, url, status, error, duration_ms), newest first."""
        where, args = ("WHERE tenant = ? ", (tenant,)) if tenant else ("", ())
        return self._rows("SELECT event_id, tenant, type, attempt, at, url, status, error, duration_ms "
                          f"FROM webhook_attempts {where}ORDER BY id DESC LIMIT ?", (*args, limit))

    def prune_webhooks(self, before: float) -> None:
        """Forget finished notifications and attempts older than ``before``."""
        with self._tx() as db:
            db.execute("DELETE FROM webhook_outbox WHERE state <> 'pending' AND created_at < ?", (before,))
            db.execute("DELETE FROM webhook_attempts WHERE at < ?", (before,))

    # --- the states notifications follow ------------------------------------------------------
    def trend_states(self) -> dict[tuple[str, str], bool]:
        return {(r[0], r[1]): bool(r[2]) for r in self._rows("SELECT tenant, topic, firing FROM trend_state")}

    def flip_trend(self, tenant: str, topic: str, firing: bool, now: float, notice: Notice) -> bool:
        """Compare-and-set the trend's notified state; on a change the notice is queued with it
        (one replica wins). False when the state was already ``firing``."""
        with self._tx() as db:
            row = db.execute("SELECT firing FROM trend_state WHERE tenant = ? AND topic = ?",
                             (tenant, topic)).fetchone()
            if bool(row and row[0]) == firing:
                return False
            if row is None:
                db.execute("INSERT INTO trend_state (tenant, topic, firing, changed_at) VALUES (?, ?, ?, ?)",
                           (tenant, topic, int(firing), now))
            elif db.execute("UPDATE trend_state SET firing = ?, changed_at = ? WHERE tenant = ? AND topic = ? "
                            "AND firing = ?", (int(firing), now, tenant, topic, int(not firing))).rowcount != 1:
                return False
            _queue(db, tenant, notice, now)
            return True

    def report_trigger(self, tenant: str, rule: str, cohort: str, node_id: str, active: bool, at: float,
                       notice, now: float) -> bool:
        """A node's trigger transition in a tenant's cohort. The fleet's state is active while any
        node reports it active; when this report changes it, ``notice(active)`` (a Notice) is
        queued with it. A report older than the node's last one changes nothing. Returns
        whether the fleet's state changed."""
        with self._tx() as db:
            key = (tenant, rule, cohort)
            before = db.execute("SELECT COUNT(*) FROM trigger_state WHERE tenant = ? AND rule = ? AND cohort = ? "
                                "AND active = 1", key).fetchone()[0] > 0
            row = db.execute("SELECT at FROM trigger_state WHERE tenant = ? AND rule = ? AND cohort = ? "
                             "AND node_id = ?", (*key, node_id)).fetchone()
            if row is not None and float(row[0]) > at:
                return False
            db.execute("INSERT INTO trigger_state (tenant, rule, cohort, node_id, active, at) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, rule, cohort, node_id) "
                       "DO UPDATE SET active = excluded.active, at = excluded.at", (*key, node_id, int(active), at))
            after = db.execute("SELECT COUNT(*) FROM trigger_state WHERE tenant = ? AND rule = ? AND cohort = ? "
                               "AND active = 1", key).fetchone()[0] > 0
            if before == after:
                return False
            _queue(db, tenant, notice(after), now)
            return True

    def forget_trigger(self, rule: str) -> None:
        """A removed rule's states (a rule of the same name later starts from nothing)."""
        with self._tx() as db:
            db.execute("DELETE FROM trigger_state WHERE rule = ?", (rule,))
