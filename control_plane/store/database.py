"""The database under every repository: connection, dialect, transactions, schema, secrets.

SQLite (WAL) in the data directory by default, or PostgreSQL (``CP_DATABASE_URL``) for
several control-plane replicas. The SQL is written once; the few dialect differences (types,
placeholders, how a write transaction starts) are in :class:`Dialect`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from control_plane import migrations
from control_plane.errors import CpError
from sentiedge_core.key_files import private_dir, private_file

log = logging.getLogger("control_plane.store")

# Schema version 1: the tables as the first release created them. Later changes are forward
# migrations in control_plane/migrations.py, applied in order when the store opens.
SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY, region TEXT NOT NULL DEFAULT '', model_name TEXT NOT NULL DEFAULT '',
    model_version TEXT NOT NULL DEFAULT '', model_sha TEXT NOT NULL DEFAULT '',
    privacy_cursor BIGINT NOT NULL DEFAULT 0,
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
    name TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
    revoked_at REAL NOT NULL DEFAULT 0
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


class Dialect:
    """What differs between SQLite and PostgreSQL for this store."""

    def __init__(self, name: str) -> None:
        self.name = name
        sqlite = {"SERIAL": "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB": "BLOB", "REAL": "REAL"}
        postgres = {"SERIAL": "BIGSERIAL PRIMARY KEY", "BLOB": "BYTEA", "REAL": "DOUBLE PRECISION"}
        self.types = sqlite if name == "sqlite" else postgres
        self.begin = "BEGIN IMMEDIATE" if name == "sqlite" else "BEGIN"

    def schema(self, text: str = SCHEMA) -> list[str]:
        text = text.replace(" REAL", " {REAL}").format(**self.types)
        return [stmt.strip() for stmt in text.split(";") if stmt.strip()]

    def sql(self, text: str) -> str:
        return text if self.name == "sqlite" else text.replace("?", "%s")


class Database:
    """The connection (SQLite's one, or a PostgreSQL pool), one transaction at a time, the schema
    and its migrations, and the secrets table; every repository mixin runs its SQL through it."""

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

    # --- replicas wake each other (PostgreSQL LISTEN/NOTIFY) --------------------------------
    CHANNEL = "sentiedge_changes"

    def notify(self) -> None:
        """Tell the other replicas that something their streams may need changed (a privacy
        request, a rollout, an app, a rule…). SQLite has one process: nothing to tell."""
        if self._pool is None or self._closed:
            return
        try:
            with self._pool.connection() as conn:
                conn.execute(f"NOTIFY {self.CHANNEL}")
        except Exception as exc:  # the next heartbeat still reaches every stream
            log.warning("could not notify the other control-plane replicas: %s", exc)

    def listen(self, on_change, url: str) -> threading.Thread | None:
        """Call ``on_change()`` whenever another replica notifies (a thread with its own
        connection, reconnecting when the server drops it). None on SQLite."""
        if self._pool is None:
            return None

        def run() -> None:
            import psycopg

            while not self._closed:
                try:
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute(f"LISTEN {self.CHANNEL}")
                        while not self._closed:
                            for _ in conn.notifies(timeout=1.0, stop_after=1):
                                on_change()
                except Exception as exc:
                    if not self._closed:
                        log.warning("listening for other replicas failed (%s); retrying in 1 s", exc)
                        time.sleep(1.0)

        thread = threading.Thread(target=run, name="replica-listener", daemon=True)
        thread.start()
        return thread

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
    def _tx(self) -> Iterator[_Conn]:
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


class Repository:
    """What a repository (each a mixin of control_plane.store.Store) uses of the Database it is
    mixed with: declared here for readers and the type checker; Database provides them."""

    if TYPE_CHECKING:
        dialect: Dialect

        def _tx(self) -> AbstractContextManager[_Conn]: ...

        def _rows(self, sql: str, args: tuple = ()) -> list[tuple]: ...


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
