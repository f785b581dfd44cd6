"""The nodes table (who is registered, what each serves, its cursor) and each node's
latest health reports (model outputs for drift, sampled-label quality)."""

from __future__ import annotations

import msgspec

from control_plane.store.database import Repository


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


NODES_COLUMNS = ("node_id, region, model_name, model_version, model_sha, privacy_cursor, last_seen, connected_since, "
                 "registered_at, decommissioned, serving_personal")
SELECT_NODES = f"SELECT {NODES_COLUMNS} FROM nodes"


class NodeStore(Repository):
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


def _node(r: tuple) -> Node:
    return Node(node_id=r[0], region=r[1], model_name=r[2], model_version=r[3], model_sha=r[4], privacy_cursor=r[5],
                last_seen=r[6], connected_since=r[7], registered_at=r[8], decommissioned=bool(r[9]),
                serving_personal=bool(r[10]))
