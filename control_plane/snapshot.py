"""What every stream sends, computed once per change and shared by every stream.

The role of go-control-plane's snapshot cache: one table of resource kinds, each with a
version and a payload; a stream keeps the version of each kind it last sent and is sent a
kind again only when its version moved. The versions (one cheap query each) and the payloads
(built once per version) are computed once per *generation* — the control plane bumps it
whenever anything changes (an operator call, a heartbeat that moved a merge, another replica's
notification) — and at least once per heartbeat interval, so a stream that wakes because of a
change does not query the store for what the others already fetched. The tail of the privacy
log is kept the same way: a stream that is caught up reads its updates from memory; one far
behind (a reconnecting edge) reads the store. Other reads every stream makes alike (the
rollouts, the models they name, the open adaptation rounds) are kept per view with
:meth:`Snapshot.once`: read by the first stream that needs them in a generation.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

PRIVACY_TAIL = 2_000  # recent privacy updates kept in memory for streams that are nearly caught up


class Resource(NamedTuple):
    kind: str  # the Pending field it fills
    version: Callable[[Any], object]  # (control plane) -> a version: cheap, compared by equality
    payload: Callable[[Any, object, float], object]  # (control plane, version, now) -> what is sent


def _priors(cp, version, now):
    from control_plane.history import with_history
    from control_plane.sync_service import Priors  # the message shape lives with the use cases

    return Priors(generated_at=now, cohorts=with_history(cp.cohorts.priors(now), cp.history.priors()),
                  recent=cp.cohorts.merged(now))


RESOURCES: tuple[Resource, ...] = (
    Resource("priors", lambda cp: (cp.cohorts.version, cp.history.version()), _priors),  # + imported history
    Resource("rules", lambda cp: cp.store.rules_version(), lambda cp, v, now: (v, cp.rules.all())),
    Resource("experiments", lambda cp: cp.store.experiments_version(),
             lambda cp, v, now: (v, cp.experiments.all())),
    Resource("apps", lambda cp: cp.store.apps_version(),
             lambda cp, v, now: (v, cp.apps.all(), cp.apps.legacy_tenant)),
    Resource("segments", lambda cp: cp.segments.version(), lambda cp, v, now: cp.segments.current()),
    Resource("topics", lambda cp: cp.topics.version(), lambda cp, v, now: (v, cp.topics.sets())),
    Resource("neighbours", lambda cp: cp.neighbours.version(), lambda cp, v, now: cp.neighbours.tables()),
)


class View(NamedTuple):
    generation: int
    resources: dict[str, tuple[object, object]]  # kind -> (version, payload)
    revoked: frozenset[str]  # node ids whose credential was revoked
    privacy: list  # the newest PrivacyEntry objects, oldest first
    privacy_head: int
    privacy_seqs: list[int]  # their seqs (ascending), to find a cursor by bisection
    reads: dict  # what Snapshot.once read for this view, by key


class Snapshot:
    def __init__(self, cp, *, max_age_s: float) -> None:
        self.cp = cp
        self.max_age_s = max_age_s
        self._lock = threading.Lock()  # streams ask from worker threads
        self._view: View | None = None
        self._at = 0.0

    def view(self, generation: int) -> View:
        with self._lock:
            now = time.monotonic()
            if self._view is None or self._view.generation != generation or now - self._at > self.max_age_s:
                self._view = self._build(generation)
                self._at = now
            return self._view

    def _build(self, generation: int) -> View:
        cp, now = self.cp, self.cp.now()
        previous = self._view.resources if self._view is not None else {}
        resources = {}
        for resource in RESOURCES:
            version = resource.version(cp)
            known = previous.get(resource.kind)
            resources[resource.kind] = known if known is not None and known[0] == version \
                else (version, resource.payload(cp, version, now))
        head = cp.store.privacy_head()
        tail = cp.store.privacy_after(max(0, head - PRIVACY_TAIL), PRIVACY_TAIL) if head else []
        return View(generation=generation, resources=resources, revoked=frozenset(cp.store.revoked_nodes()),
                    privacy=tail, privacy_head=head, privacy_seqs=[e.seq for e in tail], reads={})

    @staticmethod
    def once(view: View, key: object, read: Callable[[], Any]) -> Any:
        """``read()`` for the first stream that asks in this view; the same answer for the rest.
        (Two streams asking at once may both read; either answer is the view's.)"""
        try:
            return view.reads[key]
        except KeyError:
            return view.reads.setdefault(key, read())

    @staticmethod
    def privacy_after(view: View, cursor: int, limit: int, read_store) -> tuple[list, bool]:
        """(updates after ``cursor``, whether more remain): from memory when the tail covers it."""
        if view.privacy and cursor >= view.privacy[0].seq - 1:
            start = bisect.bisect_right(view.privacy_seqs, cursor)
            return view.privacy[start:start + limit], len(view.privacy) - start > limit
        found = read_store(cursor, limit + 1)
        return found[:limit], len(found) > limit
