"""Forward migrations of the control plane's database (SQLite or PostgreSQL).

The store creates the version-1 tables (``store.SCHEMA``, what the first release made) if
they are missing, then applies every migration newer than the version recorded in
``schema_version``, in order, inside the opening transaction: a database from any earlier
release opens, and one that is half migrated never exists. A database from a newer release
is refused rather than written by code that does not know its tables. On PostgreSQL the
replicas take an advisory lock first, so only one migrates.

To change the schema, append a migration with the next number; never edit one that shipped.
"""

from __future__ import annotations

import time

from control_plane.errors import CpError

VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), "
                 "version INTEGER NOT NULL, migrated_at {REAL} NOT NULL)")

# (version, what it adds, statements in the store's SQL with {TYPE} placeholders)
MIGRATIONS: list[tuple[int, str, str]] = [
    (2, "sticky percentage rollouts and each node's bundled model (rollback before the first rollout)", """
CREATE TABLE IF NOT EXISTS rollout_chosen (
    name TEXT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (name, node_id)
);
CREATE TABLE IF NOT EXISTS node_bundled (
    node_id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, manifest_sha TEXT NOT NULL
);
"""),
    (3, "learned segments: the published centroids and the edges' per-window sums", """
CREATE TABLE IF NOT EXISTS segment_state (
    id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, body TEXT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_summaries (
    window_start BIGINT NOT NULL, version BIGINT NOT NULL, idx INTEGER NOT NULL, seed INTEGER NOT NULL,
    node_id TEXT NOT NULL, users BIGINT NOT NULL, body TEXT NOT NULL, received_at REAL NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (window_start, version, idx, seed, node_id)
);
"""),
    (4, "federated head adaptation: jobs, the edges' updates per round, the privacy ledger, unsigned candidates", """
CREATE TABLE IF NOT EXISTS adaptation_jobs (
    job_id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL, round INTEGER NOT NULL, body TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS adaptation_updates (
    job_id TEXT NOT NULL, round INTEGER NOT NULL, node_id TEXT NOT NULL, status TEXT NOT NULL, count BIGINT NOT NULL,
    body TEXT NOT NULL, received_at REAL NOT NULL, PRIMARY KEY (job_id, round, node_id)
);
CREATE TABLE IF NOT EXISTS privacy_budget (
    lineage TEXT NOT NULL, job_id TEXT NOT NULL, round INTEGER NOT NULL, sigma REAL NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (lineage, job_id, round)
);
CREATE TABLE IF NOT EXISTS unsigned_models (manifest_sha TEXT PRIMARY KEY);
"""),
    (5, "the policy version a withdrawal filed at an edge carries, kept with its privacy-log entry", """
ALTER TABLE privacy_log ADD COLUMN policy_version TEXT NOT NULL DEFAULT '';
"""),
    (6, "aggregates per tenant: cohort cells and experiment counts are kept, merged and served per tenant "
        "(rows from before keep tenant '': the legacy tenant's, or left out of every merge when there is none)", """
CREATE TABLE IF NOT EXISTS cohorts_by_tenant (
    tenant TEXT NOT NULL, window_start BIGINT NOT NULL, cohort TEXT NOT NULL, node_id TEXT NOT NULL,
    window_seconds INTEGER NOT NULL, users INTEGER NOT NULL, texts INTEGER NOT NULL, negative INTEGER NOT NULL,
    events INTEGER NOT NULL, sentiment_sum REAL NOT NULL, categories TEXT NOT NULL,
    PRIMARY KEY (tenant, window_start, cohort, node_id)
);
INSERT INTO cohorts_by_tenant (tenant, window_start, cohort, node_id, window_seconds, users, texts, negative, events,
    sentiment_sum, categories)
    SELECT '', window_start, cohort, node_id, window_seconds, users, texts, negative, events, sentiment_sum, categories
    FROM cohorts;
DROP TABLE cohorts;
ALTER TABLE cohorts_by_tenant RENAME TO cohorts;
CREATE TABLE IF NOT EXISTS experiment_counts_by_tenant (
    tenant TEXT NOT NULL, window_start BIGINT NOT NULL, experiment TEXT NOT NULL, arm TEXT NOT NULL,
    cohort TEXT NOT NULL, node_id TEXT NOT NULL, exposures BIGINT NOT NULL, clicks BIGINT NOT NULL,
    conversions BIGINT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (tenant, window_start, experiment, arm, cohort, node_id)
);
INSERT INTO experiment_counts_by_tenant (tenant, window_start, experiment, arm, cohort, node_id, exposures, clicks,
    conversions, value)
    SELECT '', window_start, experiment, arm, cohort, node_id, exposures, clicks, conversions, value
    FROM experiment_counts;
DROP TABLE experiment_counts;
ALTER TABLE experiment_counts_by_tenant RENAME TO experiment_counts;
"""),
    (7, "daily aggregates imported from a history backfill (edge-node batch), per tenant, day and cohort", """
CREATE TABLE IF NOT EXISTS imported_daily (
    tenant TEXT NOT NULL, window_start BIGINT NOT NULL, cohort TEXT NOT NULL, users BIGINT NOT NULL,
    texts BIGINT NOT NULL, negative BIGINT NOT NULL, events BIGINT NOT NULL, sentiment_sum REAL NOT NULL,
    categories TEXT NOT NULL, source TEXT NOT NULL, imported_at REAL NOT NULL,
    PRIMARY KEY (tenant, window_start, cohort)
);
"""),
    (8, "item co-occurrence per tenant, window and node (the collaborative signal), and the item-neighbour table "
        "built from it per tenant (versioned)", """
CREATE TABLE IF NOT EXISTS cooccurrence (
    tenant TEXT NOT NULL, window_start BIGINT NOT NULL, node_id TEXT NOT NULL, window_seconds INTEGER NOT NULL,
    items TEXT NOT NULL, pairs TEXT NOT NULL, received_at REAL NOT NULL,
    PRIMARY KEY (tenant, window_start, node_id)
);
CREATE TABLE IF NOT EXISTS neighbour_tables (
    tenant TEXT PRIMARY KEY, version BIGINT NOT NULL, digest TEXT NOT NULL, body TEXT NOT NULL, built_at REAL NOT NULL
);
"""),
    (9, "topics per tenant and their history; a webhook per tenant, its durable outbox and delivery log; "
        "the notified state of each topic trend and each trigger in each cohort", """
CREATE TABLE IF NOT EXISTS topics (
    tenant TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS topic_history (
    id {SERIAL}, tenant TEXT NOT NULL, name TEXT NOT NULL, event TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    tenant TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    event_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    claimed_until REAL NOT NULL DEFAULT 0, delivered_at REAL NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (state, next_at);
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id {SERIAL}, event_id TEXT NOT NULL, tenant TEXT NOT NULL, type TEXT NOT NULL, attempt INTEGER NOT NULL,
    at REAL NOT NULL, url TEXT NOT NULL, status INTEGER NOT NULL, error TEXT NOT NULL, duration_ms REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trend_state (
    tenant TEXT NOT NULL, topic TEXT NOT NULL, firing INTEGER NOT NULL, changed_at REAL NOT NULL,
    PRIMARY KEY (tenant, topic)
);
CREATE TABLE IF NOT EXISTS trigger_state (
    tenant TEXT NOT NULL, rule TEXT NOT NULL, cohort TEXT NOT NULL, node_id TEXT NOT NULL, active INTEGER NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (tenant, rule, cohort, node_id)
);
"""),
]
LATEST = MIGRATIONS[-1][0] if MIGRATIONS else 1


def migrate(db, dialect) -> int:
    """Bring the database to ``LATEST`` inside the caller's transaction; returns the version."""
    db.execute(VERSION_TABLE.format(**dialect.types))
    row = db.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    current = int(row[0]) if row else 1  # no record: a new database, or one from before versions
    if current > LATEST:
        raise CpError(f"the database is at schema version {current}, newer than this control plane knows "
                      f"({LATEST}): run the release that wrote it, or a newer one")
    for version, _what, statements in MIGRATIONS:
        if version > current:
            for statement in dialect.schema(statements):
                db.execute(statement)
            current = version
    if row is None:
        db.execute("INSERT INTO schema_version (id, version, migrated_at) VALUES (?, ?, ?)",
                   (1, current, time.time()))
    else:
        db.execute("UPDATE schema_version SET version = ?, migrated_at = ? WHERE id = 1", (current, time.time()))
    return current
