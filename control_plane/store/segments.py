"""Learned segments: the published set (one row, compare-and-set by version) and the edges'
per-window sums, each kept once per node, window, set version and centroid (a resent
heartbeat changes nothing) until a round has folded it in."""

from __future__ import annotations

import msgspec

from control_plane.store.database import Repository
from sentiedge_core.segments import SegmentSet, Summary

_BODY = msgspec.json.Encoder()
_SET = msgspec.json.Decoder(SegmentSet)


class _Sums(msgspec.Struct):
    vector_sum: list[float]
    categories: dict[str, float]


_SUMS = msgspec.json.Decoder(_Sums)


class SegmentStore(Repository):
    def segment_set(self) -> SegmentSet | None:
        rows = self._rows("SELECT body FROM segment_state WHERE id = 1")
        return _SET.decode(rows[0][0]) if rows else None

    def segments_version(self) -> int:
        rows = self._rows("SELECT version FROM segment_state WHERE id = 1")
        return int(rows[0][0]) if rows else -1

    def put_segment_set(self, new: SegmentSet, expected: int, applied: list[tuple[str, int, int, int, bool]],
                        now: float) -> bool:
        """Publish ``new`` if the stored set is still at version ``expected`` (-1: none stored)
        and mark the sums it folded in, (node, window, version, index, seed), as applied; False
        when another replica published first (nothing changes then)."""
        with self._tx() as db:
            body = _BODY.encode(new).decode()
            if expected < 0:
                if db.execute("SELECT 1 FROM segment_state WHERE id = 1").fetchone() is not None:
                    return False
                db.execute("INSERT INTO segment_state (id, version, body, updated_at) VALUES (1, ?, ?, ?)",
                           (new.version, body, now))
            elif db.execute("UPDATE segment_state SET version = ?, body = ?, updated_at = ? WHERE id = 1 "
                            "AND version = ?", (new.version, body, now, expected)).rowcount != 1:
                return False
            db.executemany(
                "UPDATE segment_summaries SET applied = 1 WHERE node_id = ? AND window_start = ? AND version = ? "
                "AND idx = ? AND seed = ?", [(n, w, v, i, int(s)) for n, w, v, i, s in applied])
            return True

    def put_segment_sums(self, node_id: str, sums: list[Summary], now: float) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO segment_summaries (window_start, version, idx, seed, node_id, users, body, received_at, "
                "applied) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (window_start, version, idx, seed, node_id) "
                "DO NOTHING",
                [(s.window_start, s.version, s.index, int(s.seed), node_id, s.users,
                  _BODY.encode(_Sums(s.vector_sum, s.categories)).decode(), now) for s in sums])

    def pending_segment_sums(self) -> list[tuple[str, float, Summary]]:
        """(node, received at, sums) not yet folded into the set, oldest first."""
        rows = self._rows("SELECT node_id, received_at, window_start, version, idx, seed, users, body "
                          "FROM segment_summaries WHERE applied = 0 ORDER BY received_at")
        out = []
        for node, at, window, version, index, seed, users, body in rows:
            sums = _SUMS.decode(body)
            out.append((node, float(at), Summary(window_start=int(window), version=int(version), index=int(index),
                                                 seed=bool(seed), users=int(users), vector_sum=sums.vector_sum,
                                                 categories=sums.categories)))
        return out

    def prune_segment_sums(self, before: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM segment_summaries WHERE window_start < ?", (before,))
