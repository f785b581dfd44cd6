"""The replay's HTTP slice (``bench/ranking.py --http-slice N``): the first N test users' history
sent through a real ``edge-node serve`` over HTTP (consent, ``/v1/users/{id}/events``, then
``/v1/rank``) and through the edge's code in-process, with the same item-neighbour table at both;
the two must give every user the same top 10 with the same reasons.

HTTP has no backfill flag (live traffic older than the retention window is dropped), so each
user's history is moved in time as a block: it ends where it ended before the user came back,
an hour before now, and both edges keep 10,000 days of it (``EDGE_RETENTION_DAYS``). Both sides
take the wall clock as "now", as a served edge does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from bench.edge_http import free_port, start, stop

RETENTION_DAYS = "10000"
MAX_EVENTS = 100  # EDGE_MAX_EVENTS_PER_REQUEST


class Served:
    """A real ``edge-node serve`` on a fresh data directory with a known app (tenant ``tenant``)
    and the item-neighbour table already in its store, as an edge that received it over Sync."""

    def __init__(self, directory: Path, root: Path, *, tenant: str, table) -> None:
        from edge_node.config import load_settings
        from edge_node.personalization.cooccurrence import Neighbours
        from edge_node.store import EdgeStore
        from sentiedge_core.apps_file import write_development_file

        directory.mkdir(parents=True)
        self.keys = {"x-client-key": "ck_bench_ranking", "authorization": "Bearer sk_bench_ranking"}
        write_development_file(directory / "dev-app.json", app_id="app_bench", origins=[],
                               client_key="ck_bench_ranking", kid="bench-1", server_key="sk_bench_ranking",
                               tenant=tenant)
        settings = load_settings({"EDGE_DATA_DIR": str(directory), "EDGE_RETENTION_DAYS": RETENTION_DAYS})
        store = EdgeStore(directory, retention_s=settings.retention_s)
        try:
            if table is not None:
                Neighbours(store).apply(table)
        finally:
            store.close()
        self.port = free_port()
        env = {"EDGE_PORT": str(self.port), "EDGE_DATA_DIR": str(directory), "EDGE_LOG_LEVEL": "warning",
               "EDGE_RETENTION_DAYS": RETENTION_DAYS, "EDGE_RATE_LIMIT_PER_ADDRESS": "0",
               "EDGE_RATE_LIMIT_PER_KEY": "0",
               "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
        self.proc = start([sys.executable, "-m", "edge_node.cli", "serve"], env, f"http://127.0.0.1:{self.port}/readyz")

    def call(self, method: str, path: str, body: dict) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                     method=method, headers={"content-type": "application/json", **self.keys})
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read())

    def close(self) -> None:
        stop(self.proc)


def moved(rows, back: float) -> list[tuple[int, float, int]]:
    """A user's history moved so that the time they came back (``back``) is an hour ago."""
    shift = int(time.time() - 3600 - back)
    return [(i, r, t + shift) for i, r, t in rows]


def run(directory: Path, root: Path, *, edge_factory, split, history, cases, pop, table, tenant: str,
        users: int) -> dict:
    """Replay the first ``users`` test users through a served edge and an in-process one; compare."""
    from edge_node.ingest import Event
    from edge_node.personalization.ranking import Candidate
    from sentiedge_core.privacy import tenant_user

    chosen = cases[:users]
    served = Served(directory / "served", root, tenant=tenant, table=table)
    local = edge_factory(directory / "in-process", {"EDGE_RETENTION_DAYS": RETENTION_DAYS})
    if table is not None:
        local.neighbours.apply(table)
    loop = asyncio.new_event_loop()
    purposes = {"personalization": True, "cohort_analytics": True}
    same = requests = dropped = 0
    answers: dict[str, dict[int, list[tuple[str, str]]]] = {"http": {}, "in-process": {}}
    t0 = time.perf_counter()
    try:
        for u, _, _, back in chosen:
            uid, scoped = f"u{u}", tenant_user(tenant, f"u{u}")
            served.call("PUT", f"/v1/users/{uid}/consent", {"purposes": purposes, "policy_version": "v1"})
            local.privacy.set_consent(scoped, purposes, "v1", time.time(), time.time())
            rows = moved(history[u], back)
            for start_at in range(0, len(rows), MAX_EVENTS):
                chunk = [{"type": "rating", "item_id": str(i), "category": split.genres[i],
                          "value": min(max(r, 1.0), 5.0),
                          "timestamp": dt.datetime.fromtimestamp(t, dt.UTC).isoformat()}
                         for i, r, t in rows[start_at: start_at + MAX_EVENTS]]
                dropped += served.call("POST", f"/v1/users/{uid}/events", {"events": chunk})["dropped"]
                dropped += loop.run_until_complete(local.ingestor.ingest(
                    scoped, [Event(**{**e, "timestamp": dt.datetime.fromisoformat(e["timestamp"])}) for e in chunk],
                    None, time.time(), tenant=tenant)).dropped
                requests += 1
            requests += 1
        s = local.settings
        for u, candidates, _, _ in chosen:
            cands = [{"id": str(i), "category": split.genres[i], "popularity": float(pop.get(i, 0))}
                     for i in candidates]
            body = served.call("POST", "/v1/rank", {"user_id": f"u{u}", "candidates": cands, "limit": 10})
            requests += 1
            _, items = local.personalizer.rank(tenant_user(tenant, f"u{u}"), None, [Candidate(**c) for c in cands],
                                               limit=10, exploration_slots=s.exploration_slots,
                                               max_per_category=s.max_per_category, now=time.time(),
                                               diversity_depth=s.diversity_depth, tenant=tenant)
            answers["http"][u] = [(i["id"], i["reason"]) for i in body["items"]]
            answers["in-process"][u] = [(i.id, i.reason) for i in items[:10]]
            same += answers["http"][u] == answers["in-process"][u]
    finally:
        loop.close()
        served.close()
        local.close()
    return {"users": len(chosen), "same top 10 and reasons": same, "requests": requests, "dropped": dropped,
            "seconds": round(time.perf_counter() - t0, 1), "answers": answers,
            "differences": {u: {"http": answers["http"][u], "in-process": answers["in-process"][u]}
                            for u in answers["http"] if answers["http"][u] != answers["in-process"][u]}}
