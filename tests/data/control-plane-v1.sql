-- A control-plane database as the first release (schema version 1, no schema_version table) left it,
-- with a node, a model, a rollout from before bundled rollbacks, a privacy entry and a cohort row.
BEGIN TRANSACTION;
CREATE TABLE apps (
    name TEXT PRIMARY KEY, body TEXT NOT NULL, revision BIGINT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL, ok INTEGER NOT NULL
);
CREATE TABLE bundles (manifest_sha TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE cohorts (
    window_start BIGINT NOT NULL, cohort TEXT NOT NULL, node_id TEXT NOT NULL, window_seconds INTEGER NOT NULL,
    users INTEGER NOT NULL, texts INTEGER NOT NULL, negative INTEGER NOT NULL, events INTEGER NOT NULL,
    sentiment_sum REAL NOT NULL, categories TEXT NOT NULL, PRIMARY KEY (window_start, cohort, node_id)
);
INSERT INTO "cohorts" VALUES(1764000000,'eu/mobile/evening','pop-ams',1800,60,12,5,80,-3.5,'{"garden": 4.0}');
CREATE TABLE enrollments (
    token_sha256 TEXT PRIMARY KEY, node_id TEXT NOT NULL, expires_at REAL NOT NULL, used_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE experiment_counts (
    window_start BIGINT NOT NULL, experiment TEXT NOT NULL, arm TEXT NOT NULL, cohort TEXT NOT NULL,
    node_id TEXT NOT NULL, exposures BIGINT NOT NULL, clicks BIGINT NOT NULL, conversions BIGINT NOT NULL,
    value REAL NOT NULL, PRIMARY KEY (window_start, experiment, arm, cohort, node_id)
);
CREATE TABLE experiments (name TEXT PRIMARY KEY, body TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE models (
    manifest_sha TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, bundle_sha TEXT NOT NULL,
    size BIGINT NOT NULL, pushed_at REAL NOT NULL, UNIQUE (name, version)
);
INSERT INTO "models" VALUES('sha200','sentiedge-sentiment','2.0.0','tar200',1234,1764000000.0);
CREATE TABLE node_credentials (
    node_id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL DEFAULT '', enrolled_at REAL NOT NULL DEFAULT 0,
    revoked_at REAL NOT NULL DEFAULT 0, quarantined INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE node_models (
    node_id TEXT NOT NULL, manifest_sha TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL, PRIMARY KEY (node_id, manifest_sha)
);
CREATE TABLE node_outputs (node_id TEXT PRIMARY KEY, body TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE node_quality (
    node_id TEXT NOT NULL, model TEXT NOT NULL, labelled BIGINT NOT NULL, disagreements BIGINT NOT NULL,
    PRIMARY KEY (node_id, model)
);
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY, region TEXT NOT NULL DEFAULT '', model_name TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '', model_sha TEXT NOT NULL DEFAULT '', privacy_cursor BIGINT NOT NULL DEFAULT 0,
    last_seen REAL NOT NULL DEFAULT 0, connected_since REAL NOT NULL DEFAULT 0, registered_at REAL NOT NULL,
    decommissioned INTEGER NOT NULL DEFAULT 0, serving_personal INTEGER NOT NULL DEFAULT 1
);
INSERT INTO "nodes" VALUES('pop-ams','eu','sentiedge-sentiment','1.1.1','sha111',3,1764000000.0,0.0,1763000000.0,0,1);
CREATE TABLE privacy_compaction (
    id INTEGER PRIMARY KEY CHECK (id = 1), floor BIGINT NOT NULL, at REAL NOT NULL
);
CREATE TABLE privacy_log (
    seq BIGINT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL,
    subject TEXT NOT NULL, purposes TEXT NOT NULL, at REAL NOT NULL, origin_node TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
INSERT INTO "privacy_log" VALUES(1,'req-1',1,'subj','[]',1764000000.0,'',1764000000.0);
CREATE TABLE privacy_receipts (
    seq BIGINT NOT NULL, node_id TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (seq, node_id)
);
CREATE TABLE privacy_required (
    seq BIGINT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (seq, node_id)
);
CREATE TABLE rollouts (
    name TEXT PRIMARY KEY, current_sha TEXT NOT NULL, previous_sha TEXT NOT NULL DEFAULT '',
    percent INTEGER NOT NULL DEFAULT 100, nodes TEXT NOT NULL DEFAULT '[]', updated_at REAL NOT NULL
);
INSERT INTO "rollouts" VALUES('sentiedge-sentiment','sha200','',100,'[]',1764000100.0);
CREATE TABLE rule_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, node_id TEXT NOT NULL, rule TEXT NOT NULL, cohort TEXT NOT NULL,
    event TEXT NOT NULL, value REAL NOT NULL
);
CREATE TABLE rules (name TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE tokens (
    name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, revoked_at REAL NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX rule_history_reported ON rule_history (node_id, rule, cohort, at, event)
    WHERE node_id <> '';
DELETE FROM "sqlite_sequence";
COMMIT;
