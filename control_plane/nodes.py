"""Node registry: who is connected, what they serve, how far behind, when last seen."""

from __future__ import annotations

import re

import msgspec

from control_plane.errors import NotFound
from control_plane.store import Node, Store

NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class NodeView(msgspec.Struct, kw_only=True):
    node: Node
    state: str  # connected, disconnected, stale, decommissioned
    cursor_lag: int


class NodeRegistry:
    def __init__(self, store: Store, *, stale_after_s: float) -> None:
        self.store = store
        self.stale_after_s = stale_after_s
        self.connected: set[str] = set()  # streams open on this replica

    def hello(self, node_id: str, region: str, model: tuple[str, str, str], cursor: int, now: float,
              bundled: tuple[str, str, str] | None = None) -> Node:
        if bundled and bundled[2]:
            self.store.set_node_bundled(node_id, *bundled)
        node = self.store.node(node_id) or Node(node_id=node_id, registered_at=now)
        node.region = region
        node.model_name, node.model_version, node.model_sha = model
        node.privacy_cursor = max(node.privacy_cursor, cursor)
        node.last_seen = now
        node.connected_since = now
        node.decommissioned = False  # a node that comes back is registered again
        self.store.upsert_node(node)
        self.connected.add(node_id)
        return node

    def seen(self, node_id: str, now: float, *, model: tuple[str, str, str] | None = None,
             serving_personal: bool | None = None) -> None:
        node = self.store.node(node_id)
        if node is None:
            return
        node.last_seen = now
        if model is not None:
            node.model_name, node.model_version, node.model_sha = model
        if serving_personal is not None:
            node.serving_personal = serving_personal
        self.store.upsert_node(node)

    def gone(self, node_id: str, now: float) -> None:
        self.connected.discard(node_id)
        node = self.store.node(node_id)
        if node is not None:
            node.last_seen = now
            node.connected_since = 0.0
            self.store.upsert_node(node)

    def decommission(self, node_id: str) -> Node:
        node = self.store.node(node_id)
        if node is None:
            raise NotFound(f"no node {node_id!r}")
        node.decommissioned = True
        self.store.upsert_node(node)
        return node

    def views(self, now: float) -> list[NodeView]:
        head = self.store.privacy_head()
        out = []
        for node in self.store.nodes():
            if node.decommissioned:
                state = "decommissioned"
            elif now - node.last_seen > self.stale_after_s:
                state = "stale"
            elif node.node_id in self.connected or node.connected_since:
                state = "connected"
            else:
                state = "disconnected"
            out.append(NodeView(node=node, state=state, cursor_lag=max(head - node.privacy_cursor, 0)))
        return out
