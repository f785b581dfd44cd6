"""The control plane's state behind one interface: SQLite (WAL) in the data directory by
default, or PostgreSQL (``CP_DATABASE_URL``) for several control-plane replicas.

Every method is one transaction: a call that returned has committed, so a restart (even
after SIGKILL) loses nothing acknowledged to an operator or an edge. Domain modules talk
to :class:`Store` only. The SQL is written once; the few dialect differences (types,
placeholders, how a write transaction starts) are in :class:`Dialect`. Privacy sequence
numbers are allocated under a table lock, never from a sequence generator, so they have
no gaps even when a transaction rolls back (edges refuse a gap as out of order).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from sentiedge_core.key_files import private_dir, private_file
from control_plane import migrations
from control_plane.errors import CpError
from control_plane.store_access import AccessStore
from sentiedge_core.cohorts import Aggregate

# Schema version 1: the tables as the first release created them. Later changes are forward
# migrations in control_plane/migrations.py, applied in order when the store opens.
SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY, region TEXT NOT NULL DEFAULT '', model_name TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '', model_sha TEXT NOT NULL DEFAULT '', privacy_cursor BIGINT NOT NULL DEFAULT 0,
    last_seen REAL NOT NULL DEFAULT 0, connected_since REAL NOT NULL DEFAULT 0, registered_at REAL NOT NULL,
    decommissioned INTEGER NOT NULL DEFAULT 0, serving_personal INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS privacy_log (
    seq BIGINT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL,
    subject TEXT NOT NULL, purposes TEXT NOT NULL, at REAL NOT NULL, origin_node TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS privacy_required (
    seq BIGINT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (seq, node_id)
);
CREATE TABLE IF NOT EXISTS privacy_receipts (
    seq BIGINT NOT NULL, node_id TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (seq, node_id)
);
CREATE TABLE IF NOT EXISTS privacy_compaction (
    id INTEGER PRIMARY KEY CHECK (id = 1), floor BIGINT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    manifest_sha TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, bundle_sha TEXT NOT NULL,
    size BIGINT NOT NULL, pushed_at REAL NOT NULL, UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS rollouts (
    name TEXT PRIMARY KEY, current_sha TEXT NOT NULL, previous_sha TEXT NOT NULL DEFAULT '',
    percent INTEGER NOT NULL DEFAULT 100, nodes TEXT NOT NULL DEFAULT '[]', updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS node_models (
    node_id TEXT NOT NULL, manifest_sha TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL, PRIMARY KEY (node_id, manifest_sha)
);
CREATE TABLE IF NOT EXISTS cohorts (
    window_start BIGINT NOT NULL, cohort TEXT NOT NULL, node_id TEXT NOT NULL, window_seconds INTEGER NOT NULL,
    users INTEGER NOT NULL, texts INTEGER NOT NULL, negative INTEGER NOT NULL, events INTEGER NOT NULL,
    sentiment_sum REAL NOT NULL, categories TEXT NOT NULL, PRIMARY KEY (window_start, cohort, node_id)
);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value {BLOB} NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (manifest_sha TEXT PRIMARY KEY, data {BLOB} NOT NULL);
CREATE TABLE IF NOT EXISTS rules (name TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rule_history (
    id {SERIAL}, at REAL NOT NULL, node_id TEXT NOT NULL, rule TEXT NOT NULL, cohort TEXT NOT NULL,
    event TEXT NOT NULL, value REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (name TEXT PRIMARY KEY, body TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS experiment_counts (
    window_start BIGINT NOT NULL, experiment TEXT NOT NULL, arm TEXT NOT NULL, cohort TEXT NOT NULL,
    node_id TEXT NOT NULL, exposures BIGINT NOT NULL, clicks BIGINT NOT NULL, conversions BIGINT NOT NULL,
    value REAL NOT NULL, PRIMARY KEY (window_start, experiment, arm, cohort, node_id)
);
CREATE TABLE IF NOT EXISTS node_quality (
    node_id TEXT NOT NULL, model TEXT NOT NULL, labelled BIGINT NOT NULL, disagreements BIGINT NOT NULL,
    PRIMARY KEY (node_id, model)
);
CREATE TABLE IF NOT EXISTS node_outputs (node_id TEXT PRIMARY KEY, body TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, revoked_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS apps (
    name TEXT PRIMARY KEY, body TEXT NOT NULL, revision BIGINT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS node_credentials (
    node_id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL DEFAULT '', enrolled_at REAL NOT NULL DEFAULT 0,
    revoked_at REAL NOT NULL DEFAULT 0, quarantined INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS enrollments (
    token_sha256 TEXT PRIMARY KEY, node_id TEXT NOT NULL, expires_at REAL NOT NULL, used_at REAL NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS rule_history_reported ON rule_history (node_id, rule, cohort, at, event)
    WHERE node_id <> '';
CREATE TABLE IF NOT EXISTS audit (
    id {SERIAL}, at REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL, ok INTEGER NOT NULL
);
"""


class Node(msgspec.Struct, kw_only=True):
    node_id: str
    region: str = ""
    model_name: str = ""
    model_version: str = ""
    model_sha: str = ""
    privacy_cursor: int = 0
    last_seen: float = 0.0
    connected_since: float = 0.0
    registered_at: float = 0.0
    decommissioned: bool = False
    serving_personal: bool = True


class PrivacyEntry(msgspec.Struct, kw_only=True):
    seq: int
    request_id: str
    kind: int
    subject: str
    purposes: list[str]
    at: float
    origin_node: str
    created_at: float


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
NODES_COLUMNS = ("node_id, region, model_name, model_version, model_sha, privacy_cursor, last_seen, connected_since, "
                 "registered_at, decommissioned, serving_personal")
PRIVACY_LOG_COLUMNS = "seq, request_id, kind, subject, purposes, at, origin_node, created_at"
MODELS_COLUMNS = "manifest_sha, name, version, bundle_sha, size, pushed_at"
ROLLOUTS_COLUMNS = "name, current_sha, previous_sha, percent, nodes, updated_at"
COHORTS_COLUMNS = ("window_start, cohort, node_id, window_seconds, users, texts, negative, events, sentiment_sum, "
                   "categories")
SELECT_NODES = f"SELECT {NODES_COLUMNS} FROM nodes"
SELECT_PRIVACY = f"SELECT {PRIVACY_LOG_COLUMNS} FROM privacy_log"
SELECT_MODELS = f"SELECT {MODELS_COLUMNS} FROM models"
SELECT_ROLLOUTS = f"SELECT {ROLLOUTS_COLUMNS} FROM rollouts"
SELECT_COHORTS = f"SELECT {COHORTS_COLUMNS} FROM cohorts"


class Dialect:
    """What differs between SQLite and PostgreSQL for this store."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.types = ({"SERIAL": "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB": "BLOB", "REAL": "REAL"} if name == "sqlite"
                      else {"SERIAL": "BIGSERIAL PRIMARY KEY", "BLOB": "BYTEA", "REAL": "DOUBLE PRECISION"})
        self.begin = "BEGIN IMMEDIATE" if name == "sqlite" else "BEGIN"

    def schema(self, text: str = SCHEMA) -> list[str]:
        text = text.replace(" REAL", " {REAL}").format(**self.types)
        return [stmt.strip() for stmt in text.split(";") if stmt.strip()]

    def sql(self, text: str) -> str:
        return text if self.name == "sqlite" else text.replace("?", "%s")


class Store(AccessStore):
    def __init__(self, directory: Path, database_url: str = "") -> None:
        self._lock = threading.RLock()  # one transaction at a time (privacy sequence numbers have no gaps)
        self._held = None  # the connection of the transaction in progress, for reads inside it
        self._pool = None
        self._db = None
        self._closed = False
        try:
            if database_url:
                from psycopg_pool import ConnectionPool

                self.dialect = Dialect("postgresql")
                # Connections are checked when taken and replaced when the server dropped them
                # (a restart, a failover, an idle timeout): the next call reconnects.
                self._pool = ConnectionPool(database_url, min_size=1, max_size=2, kwargs={"autocommit": True},
                                            check=ConnectionPool.check_connection, timeout=10, open=True,
                                            name="control-plane")
                self._pool.wait(timeout=10)
            else:
                private_file(private_dir(directory) / "control-plane.db")  # 0700 directory, 0600 files
                self.dialect = Dialect("sqlite")
                self._db = sqlite3.connect(directory / "control-plane.db", isolation_level=None,
                                           check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
            with self._tx() as db:
                if self.dialect.name == "postgresql":  # replicas starting together create the schema once
                    db.execute("SELECT pg_advisory_xact_lock(2026112201)")
                for statement in self.dialect.schema():
                    db.execute(statement)
                self.schema_version = migrations.migrate(db, self.dialect)
        except CpError:
            raise
        except Exception as exc:  # sqlite3.Error, psycopg.Error, OSError
            where = "PostgreSQL (CP_DATABASE_URL)" if database_url else str(directory)
            raise CpError(f"cannot open the database in {where}: {exc}") from exc

    def close(self) -> None:
        """Close the database once every call in progress (in any thread) has finished; later
        calls raise CpError instead of touching a closed connection."""
        with self._lock:
            self._closed = True
            if self._pool is not None:
                self._pool.close()
            elif self._db is not None:
                self._db.close()

    @contextmanager
    def _connection(self):
        """The connection to use now: the open transaction's, SQLite's one, or one from the pool."""
        if self._closed:
            raise CpError("the control-plane store is closed (shutting down)")
        if self._held is not None:
            yield self._held
        elif self._pool is None:
            yield self._db
        else:
            with self._pool.connection() as conn:
                yield conn

    @contextmanager
    def _tx(self) -> Iterator["_Conn"]:
        with self._lock, self._connection() as conn:
            conn.execute(self.dialect.begin)
            outer, self._held = self._held, conn
            try:
                yield _Conn(conn, self.dialect)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._held = outer
            conn.execute("COMMIT")

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock, self._connection() as conn:
            return conn.execute(self.dialect.sql(sql), args).fetchall()

    # --- secrets ----------------------------------------------------------------------------
    def secret(self, name: str, make) -> bytes:
        with self._tx() as db:
            row = db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return bytes(row[0])
            value = make()
            db.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", (name, value))
            return value

    def stored_secret(self, name: str) -> bytes | None:
        rows = self._rows("SELECT value FROM secrets WHERE name = ?", (name,))
        return bytes(rows[0][0]) if rows else None

    def forget_secret(self, name: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM secrets WHERE name = ?", (name,))

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
        """(window, experiment, arm, cohort, exposures, clicks, conversions, value); a resend replaces."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO experiment_counts (window_start, experiment, arm, cohort, node_id, exposures, clicks, "
                "conversions, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(window_start, experiment, arm, cohort, node_id) DO UPDATE SET exposures = excluded.exposures, "
                "clicks = excluded.clicks, conversions = excluded.conversions, value = excluded.value",
                [(w, e, a, c, node_id, n, k, x, v) for w, e, a, c, n, k, x, v in rows])

    def experiment_counts(self, name: str) -> list[tuple[str, str, int, int, float]]:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in self._rows(
            "SELECT arm, cohort, SUM(exposures), SUM(conversions), SUM(value) FROM experiment_counts "
            "WHERE experiment = ? GROUP BY arm, cohort", (name,))]

    # --- model outputs (drift) ------------------------------------------------------------
    def put_outputs(self, node_id: str, body: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO node_outputs (node_id, body, at) VALUES (?, ?, ?) ON CONFLICT (node_id) DO UPDATE "
                       "SET body = excluded.body, at = excluded.at", (node_id, body, now))

    def put_quality(self, node_id: str, rows: list[tuple[str, int, int]]) -> None:
        with self._tx() as db:
            db.executemany("INSERT INTO node_quality (node_id, model, labelled, disagreements) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (node_id, model) DO UPDATE SET "
                           "labelled = excluded.labelled, disagreements = excluded.disagreements",
                           [(node_id, m, n, d) for m, n, d in rows])

    def quality(self) -> list[tuple[str, str, int, int]]:
        return [(r[0], r[1], r[2], r[3]) for r in self._rows(
            "SELECT node_id, model, labelled, disagreements FROM node_quality ORDER BY model, node_id")]

    def outputs(self) -> list[tuple[str, str, float]]:
        return [(r[0], r[1], r[2]) for r in self._rows("SELECT node_id, body, at FROM node_outputs ORDER BY node_id")]

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

    # --- nodes ------------------------------------------------------------------------------
    def upsert_node(self, node: Node) -> None:
        fields = {k: int(v) if isinstance(v, bool) else v for k, v in msgspec.structs.asdict(node).items()}
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        updates = ", ".join(f"{c} = excluded.{c}" for c in fields if c not in {"node_id", "registered_at"})
        with self._tx() as db:
            db.execute(f"INSERT INTO nodes ({columns}) VALUES ({marks}) ON CONFLICT (node_id) DO UPDATE SET {updates}",
                       tuple(fields.values()))

    def node(self, node_id: str) -> Node | None:
        rows = self._rows(f"{SELECT_NODES} WHERE node_id = ?", (node_id,))
        return _node(rows[0]) if rows else None

    def nodes(self) -> list[Node]:
        return [_node(r) for r in self._rows(f"{SELECT_NODES} ORDER BY node_id")]

    # --- privacy log ------------------------------------------------------------------------
    def append_privacy(self, request_id: str, kind: int, subject: str, purposes: list[str], at: float,
                       origin_node: str, now: float) -> tuple[PrivacyEntry, bool]:
        """Append a request (idempotent by request id); returns it and whether it is new."""
        with self._tx() as db:
            row = db.execute(f"{SELECT_PRIVACY} WHERE request_id = ?", (request_id,)).fetchone()
            if row is not None:
                return _entry(row), False
            if self.dialect.name == "postgresql":  # one writer at a time allocates sequence numbers
                db.execute("LOCK TABLE privacy_log IN EXCLUSIVE MODE")
                row = db.execute(f"{SELECT_PRIVACY} WHERE request_id = ?", (request_id,)).fetchone()
                if row is not None:
                    return _entry(row), False
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM privacy_log").fetchone()[0]
            db.execute("INSERT INTO privacy_log (seq, request_id, kind, subject, purposes, at, origin_node, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (seq, request_id, kind, subject, json.dumps(purposes), at, origin_node, now))
            db.execute("INSERT INTO privacy_required (seq, node_id) SELECT ?, node_id FROM nodes "
                       "WHERE decommissioned = 0", (seq,))
            if origin_node:  # the edge it was filed at applied it before filing
                db.execute("INSERT INTO privacy_receipts (seq, node_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                           (seq, origin_node, now))
            row = db.execute(f"{SELECT_PRIVACY} WHERE seq = ?", (seq,)).fetchone()
            return _entry(row), True

    def privacy_after(self, cursor: int, limit: int = 500) -> list[PrivacyEntry]:
        cursor = max(cursor, self.privacy_floor())  # compacted entries are never sent again
        return [_entry(r) for r in self._rows(f"{SELECT_PRIVACY} WHERE seq > ? ORDER BY seq LIMIT ?",
                                              (cursor, limit))]

    def privacy_head(self) -> int:
        return self._rows("SELECT COALESCE(MAX(seq), 0) FROM privacy_log")[0][0]

    def privacy_entry(self, request_id: str) -> PrivacyEntry | None:
        rows = self._rows(f"{SELECT_PRIVACY} WHERE request_id = ?", (request_id,))
        return _entry(rows[0]) if rows else None

    def privacy_for_subject(self, subject: str, kind: int, limit: int = 5) -> list[PrivacyEntry]:
        return [_entry(r) for r in self._rows(f"{SELECT_PRIVACY} WHERE subject = ? AND kind = ? "
                                              "ORDER BY seq DESC LIMIT ?", (subject, kind, limit))]

    def privacy_recent(self, limit: int) -> list[PrivacyEntry]:
        return [_entry(r) for r in self._rows(f"{SELECT_PRIVACY} ORDER BY seq DESC LIMIT ?", (limit,))]

    def privacy_floor(self) -> int:
        rows = self._rows("SELECT floor FROM privacy_compaction WHERE id = 1")
        return rows[0][0] if rows else 0

    def compact_privacy(self, created_before: float, now: float) -> tuple[int, int]:
        """Advance the floor over the oldest entries that every node they were filed for has
        applied and that were filed before ``created_before``; their subject and purposes are
        blanked (the request id, kind, times and receipts stay as the proof). Returns (floor,
        entries compacted)."""
        with self._tx() as db:
            row = db.execute("SELECT floor FROM privacy_compaction WHERE id = 1").fetchone()
            floor = row[0] if row else 0
            head = db.execute("SELECT COALESCE(MAX(seq), 0) FROM privacy_log").fetchone()[0]
            blocker = db.execute(
                "SELECT MIN(l.seq) FROM privacy_log l WHERE l.seq > ? AND (l.created_at >= ? OR EXISTS ("
                "  SELECT 1 FROM privacy_required r JOIN nodes n ON n.node_id = r.node_id AND n.decommissioned = 0"
                "  WHERE r.seq = l.seq AND NOT EXISTS ("
                "    SELECT 1 FROM privacy_receipts p WHERE p.seq = r.seq AND p.node_id = r.node_id)))",
                (floor, created_before)).fetchone()[0]
            new_floor = head if blocker is None else blocker - 1
            if new_floor <= floor:
                return floor, 0
            compacted = db.execute("UPDATE privacy_log SET subject = '', purposes = '[]' WHERE seq > ? AND seq <= ?",
                                   (floor, new_floor)).rowcount
            if row is None:
                db.execute("INSERT INTO privacy_compaction (id, floor, at) VALUES (1, ?, ?)", (new_floor, now))
            else:
                db.execute("UPDATE privacy_compaction SET floor = ?, at = ? WHERE id = 1", (new_floor, now))
            return new_floor, compacted

    def add_receipt(self, seq: int, node_id: str, now: float) -> bool:
        """Record a node's receipt (idempotent) and move its cursor; True if new."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM privacy_log WHERE seq = ?", (seq,)).fetchone() is None:
                return False
            cur = db.execute("INSERT INTO privacy_receipts (seq, node_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                             (seq, node_id, now))
            db.execute("UPDATE nodes SET privacy_cursor = CASE WHEN privacy_cursor > ? THEN privacy_cursor ELSE ? END "
                       "WHERE node_id = ?", (seq, seq, node_id))
            return cur.rowcount == 1

    def receipts(self, seq: int) -> list[tuple[str, float]]:
        return [(r[0], r[1]) for r in self._rows(
            "SELECT node_id, at FROM privacy_receipts WHERE seq = ? ORDER BY at", (seq,))]

    def required(self, seq: int) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT r.node_id FROM privacy_required r JOIN nodes n ON n.node_id = r.node_id "
            "WHERE r.seq = ? AND n.decommissioned = 0 ORDER BY r.node_id", (seq,))]

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
        rows = self._rows("SELECT substr(data, ?, ?) FROM bundles WHERE manifest_sha = ?", (offset + 1, size, manifest_sha))
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

    # --- cohorts ----------------------------------------------------------------------------
    def put_aggregates(self, node_id: str, aggregates: list[Aggregate]) -> None:
        with self._tx() as db:
            db.executemany(
                f"INSERT INTO cohorts ({COHORTS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (window_start, cohort, node_id) "
                "DO UPDATE SET users = excluded.users, texts = excluded.texts, negative = excluded.negative, "
                "events = excluded.events, sentiment_sum = excluded.sentiment_sum, categories = excluded.categories",
                [(a.window_start, a.cohort, node_id, a.window_seconds, a.users, a.texts, a.negative, a.events,
                  a.sentiment_sum, _categories_column(a)) for a in aggregates])

    def aggregates_since(self, window_start: int) -> list[tuple[str, Aggregate]]:
        return [(r[2], Aggregate(window_start=r[0], cohort=r[1], window_seconds=r[3], users=r[4], texts=r[5],
                                 negative=r[6], events=r[7], sentiment_sum=r[8], **_categories_fields(r[9])))
                for r in self._rows(f"{SELECT_COHORTS} WHERE window_start >= ?", (window_start,))]

    def largest_cell(self, node_id: str) -> int:
        """The most users this node ever reported for one cohort and window (0: none kept)."""
        return int(self._rows("SELECT COALESCE(MAX(users), 0) FROM cohorts WHERE node_id = ?", (node_id,))[0][0])

    def prune_aggregates(self, before: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM cohorts WHERE window_start < ?", (before,))


PER_CATEGORY = ("categories", "topic_texts", "topic_negative", "topic_events", "topic_sentiment")


def _categories_column(a: Aggregate) -> str:
    """The per-category fields, as one JSON object in the ``categories`` column."""
    return json.dumps({name: getattr(a, name) for name in PER_CATEGORY})


def _categories_fields(column: str) -> dict:
    """Read the column back; rows written before per-category counts hold only the weights."""
    value = json.loads(column)
    if isinstance(value.get("categories"), dict):
        return {name: value.get(name, {}) for name in PER_CATEGORY}
    return {"categories": value}


class _Conn:
    """The connection inside a transaction, speaking this store's dialect."""

    def __init__(self, db, dialect: Dialect) -> None:
        self._db = db
        self._dialect = dialect

    def execute(self, sql: str, args: tuple = ()):
        return self._db.execute(self._dialect.sql(sql), args)

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        if self._dialect.name == "sqlite":
            self._db.executemany(sql, rows)
        else:
            with self._db.cursor() as cur:
                cur.executemany(self._dialect.sql(sql), rows)


def _node(r: tuple) -> Node:
    return Node(node_id=r[0], region=r[1], model_name=r[2], model_version=r[3], model_sha=r[4], privacy_cursor=r[5],
                last_seen=r[6], connected_since=r[7], registered_at=r[8], decommissioned=bool(r[9]),
                serving_personal=bool(r[10]))


def _entry(r: tuple) -> PrivacyEntry:
    return PrivacyEntry(seq=r[0], request_id=r[1], kind=r[2], subject=r[3], purposes=json.loads(r[4]), at=r[5],
                        origin_node=r[6], created_at=r[7])
