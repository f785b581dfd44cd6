"""The control plane's state behind one interface: SQLite (WAL) in the data directory by
default, or PostgreSQL (``CP_DATABASE_URL``) for several control-plane replicas.

Every method is one transaction: a call that returned has committed, so a restart (even
after SIGKILL) loses nothing acknowledged to an operator or an edge. Domain modules talk
to :class:`Store` only. The SQL is written once; the few dialect differences (types,
placeholders, how a write transaction starts) are in :class:`Dialect`. Privacy sequence
numbers are allocated under a table lock, never from a sequence generator, so they have
no gaps even when a transaction rolls back (edges refuse a gap as out of order).

One repository per table group, each a mixin in this package (nodes, privacy, models,
cohorts, rules, operators, access, segments, history, topics, webhooks,
co-occurrence) over
:class:`~control_plane.store.database.Database`, with explicit column lists; :class:`Store` is all
of them on one connection.
"""

from __future__ import annotations

from control_plane.store.access import AccessStore
from control_plane.store.adaptation import AdaptationStore
from control_plane.store.cohorts import CohortStore
from control_plane.store.cooccurrence import CooccurrenceStore
from control_plane.store.database import SCHEMA, Database, Dialect
from control_plane.store.history import HistoryStore
from control_plane.store.models import ModelRow, ModelStore, Rollout
from control_plane.store.nodes import Node, NodeStore
from control_plane.store.operators import OperatorStore
from control_plane.store.privacy import PrivacyEntry, PrivacyStore
from control_plane.store.rules import RuleStore
from control_plane.store.segments import SegmentStore
from control_plane.store.topics import TopicStore
from control_plane.store.webhooks import WebhookStore
from sentiedge_core.cohorts import Aggregate

__all__ = ["SCHEMA", "Aggregate", "Dialect", "ModelRow", "Node", "PrivacyEntry", "Rollout", "Store"]


class Store(Database, NodeStore, PrivacyStore, ModelStore, CohortStore, RuleStore, OperatorStore, AccessStore,
            SegmentStore, AdaptationStore, HistoryStore, TopicStore, WebhookStore,
            CooccurrenceStore):
    """Every table's repository on one connection, one transaction per call."""
