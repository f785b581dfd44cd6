"""The privacy log: requests in sequence, the nodes each must reach, their receipts, and
the compacted prefix."""

from __future__ import annotations

import json

import msgspec

from control_plane.store.database import Repository


class PrivacyEntry(msgspec.Struct, kw_only=True):
    seq: int
    request_id: str
    kind: int
    subject: str
    purposes: list[str]
    at: float
    origin_node: str
    created_at: float
    policy_version: str = ""  # of a withdrawal filed at an edge, as the user chose it; "": none (operator requests)


PRIVACY_LOG_COLUMNS = "seq, request_id, kind, subject, purposes, at, origin_node, created_at, policy_version"
SELECT_PRIVACY = f"SELECT {PRIVACY_LOG_COLUMNS} FROM privacy_log"


class PrivacyStore(Repository):
    # --- privacy log ------------------------------------------------------------------------
    def append_privacy(self, request_id: str, kind: int, subject: str, purposes: list[str], at: float,
                       origin_node: str, now: float, policy_version: str = "") -> tuple[PrivacyEntry, bool]:
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
            db.execute(f"INSERT INTO privacy_log ({PRIVACY_LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (seq, request_id, kind, subject, json.dumps(purposes), at, origin_node, now, policy_version))
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
        return self.add_receipts([(seq, node_id)], now)[0]

    def add_receipts(self, receipts: list[tuple[int, str]], now: float) -> list[bool]:
        """Record receipts (seq, node) in one transaction, each idempotent, moving each node's
        cursor; per receipt, True if new (False: known already, or no such request)."""
        out = []
        with self._tx() as db:
            for seq, node_id in receipts:
                if db.execute("SELECT 1 FROM privacy_log WHERE seq = ?", (seq,)).fetchone() is None:
                    out.append(False)
                    continue
                cur = db.execute("INSERT INTO privacy_receipts (seq, node_id, at) VALUES (?, ?, ?) "
                                 "ON CONFLICT DO NOTHING", (seq, node_id, now))
                db.execute("UPDATE nodes SET privacy_cursor = CASE WHEN privacy_cursor > ? THEN privacy_cursor "
                           "ELSE ? END WHERE node_id = ?", (seq, seq, node_id))
                out.append(cur.rowcount == 1)
        return out

    def receipts(self, seq: int) -> list[tuple[str, float]]:
        return [(r[0], r[1]) for r in self._rows(
            "SELECT node_id, at FROM privacy_receipts WHERE seq = ? ORDER BY at", (seq,))]

    def first_unreceipted(self, node_id: str, after: int, upto: int) -> int | None:
        """The lowest sequence number in (after, upto] the node must receipt and has not."""
        rows = self._rows("SELECT MIN(r.seq) FROM privacy_required r WHERE r.seq > ? AND r.seq <= ? AND r.node_id = ? "
                          "AND NOT EXISTS (SELECT 1 FROM privacy_receipts p WHERE p.seq = r.seq "
                          "AND p.node_id = r.node_id)", (after, upto, node_id))
        return rows[0][0] if rows and rows[0][0] is not None else None

    def required(self, seq: int) -> list[str]:
        return [r[0] for r in self._rows(
            "SELECT r.node_id FROM privacy_required r JOIN nodes n ON n.node_id = r.node_id "
            "WHERE r.seq = ? AND n.decommissioned = 0 ORDER BY r.node_id", (seq,))]


def _entry(r: tuple) -> PrivacyEntry:
    return PrivacyEntry(seq=r[0], request_id=r[1], kind=r[2], subject=r[3], purposes=json.loads(r[4]), at=r[5],
                        origin_node=r[6], created_at=r[7], policy_version=r[8])
