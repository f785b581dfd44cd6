"""Item co-occurrence per tenant, window and node (a resent window replaces the node's row), and
each tenant's item-neighbour table with its version (compare-and-set: one replica publishes a
version). Migration 8. Counts of at least the minimum size only: nothing in them is per user."""

from __future__ import annotations

import msgspec

from control_plane.store.database import Repository
from sentiedge_core.cooccurrence import NeighbourTable, PairWindow

_JSON = msgspec.json.Encoder()
_ITEMS = msgspec.json.Decoder(dict[str, int])
_PAIRS = msgspec.json.Decoder(list[tuple[str, str, int]])
_TABLE = msgspec.json.Decoder(dict[str, list[tuple[str, float]]])


class CooccurrenceStore(Repository):
    def put_pair_windows(self, node_id: str, windows: list[PairWindow], now: float) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO cooccurrence (tenant, window_start, node_id, window_seconds, items, pairs, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, window_start, node_id) DO UPDATE SET "
                "window_seconds = excluded.window_seconds, items = excluded.items, pairs = excluded.pairs, "
                "received_at = excluded.received_at",
                [(w.tenant, w.window_start, node_id, w.window_seconds, _JSON.encode(w.items).decode(),
                  _JSON.encode(w.pairs).decode(), now) for w in windows])

    def pair_windows_since(self, window_start: int, tenant: str | None = None) -> list[tuple[str, PairWindow]]:
        """(node, window) of every tenant (or one) from ``window_start`` on."""
        where, args = ("window_start >= ?", (window_start,)) if tenant is None else \
            ("window_start >= ? AND tenant = ?", (window_start, tenant))
        return [(r[2], PairWindow(tenant=r[0], window_start=int(r[1]), window_seconds=int(r[3]),
                                  items=_ITEMS.decode(r[4]), pairs=_PAIRS.decode(r[5])))
                for r in self._rows("SELECT tenant, window_start, node_id, window_seconds, items, pairs "
                                    f"FROM cooccurrence WHERE {where} ORDER BY tenant, window_start, node_id", args)]

    def pair_tenants(self) -> list[str]:
        """Every tenant with co-occurrence stored or a table built."""
        return [r[0] for r in self._rows("SELECT tenant FROM cooccurrence UNION SELECT tenant FROM neighbour_tables")]

    def prune_pair_windows(self, before: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM cooccurrence WHERE window_start < ?", (before,))

    # --- the tables -------------------------------------------------------------------------
    def neighbour_table(self, tenant: str) -> tuple[NeighbourTable, str] | None:
        """A tenant's table and its content's digest."""
        rows = self._rows("SELECT version, digest, body, built_at FROM neighbour_tables WHERE tenant = ?", (tenant,))
        if not rows:
            return None
        version, digest, body, built_at = rows[0]
        return NeighbourTable(tenant=tenant, version=int(version), built_at=float(built_at),
                              items=_TABLE.decode(body)), digest

    def neighbour_tables(self) -> list[NeighbourTable]:
        return [NeighbourTable(tenant=r[0], version=int(r[1]), built_at=float(r[3]), items=_TABLE.decode(r[2]))
                for r in self._rows("SELECT tenant, version, body, built_at FROM neighbour_tables ORDER BY tenant")]

    def neighbours_version(self) -> tuple[int, int]:
        """Moves whenever any replica publishes a table: (tables, sum of their versions)."""
        row = self._rows("SELECT COUNT(*), COALESCE(SUM(version), 0) FROM neighbour_tables")[0]
        return int(row[0]), int(row[1])

    def put_neighbour_table(self, table: NeighbourTable, digest: str, expected: int) -> bool:
        """Publish ``table`` (its version ``expected`` + 1) if the stored one is still at ``expected``
        (0: none stored); False when another replica published first."""
        body = _JSON.encode(table.items).decode()
        with self._tx() as db:
            if expected == 0:
                if db.execute("SELECT 1 FROM neighbour_tables WHERE tenant = ?", (table.tenant,)).fetchone():
                    return False
                db.execute("INSERT INTO neighbour_tables (tenant, version, digest, body, built_at) "
                           "VALUES (?, ?, ?, ?, ?)", (table.tenant, table.version, digest, body, table.built_at))
                return True
            return db.execute("UPDATE neighbour_tables SET version = ?, digest = ?, body = ?, built_at = ? "
                              "WHERE tenant = ? AND version = ?",
                              (table.version, digest, body, table.built_at, table.tenant, expected)).rowcount == 1
