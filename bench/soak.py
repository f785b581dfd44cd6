"""Soak under hostile load (not a test). ``make bench-soak``

Starts a real ``edge-node serve`` (public and admin listeners, loopback) and replays, bounded,
the attacks of the hardening review, measuring the same normal traffic before and after:

1. a user with 15,000 distinct categories, then 300 ``/v1/personalize`` with new regions
   (decision cache, profile and cohort-cell growth);
2. a 60,000-character ``region`` and JSON nested 5,000 deep (must be 4xx, never 5xx);
3. thousands of distinct users with consent and events (store growth against
   ``EDGE_STORE_MAX_BYTES``);
4. thousands of deletions on a standalone edge (the outbox: enqueue must stay O(1));
5. slow clients holding connections with partial headers (slowloris), while ``/healthz``
   on the admin listener is timed.

Prints process memory (RSS), data-dir disk, store bytes, normal traffic p50/p99, and admin
``/healthz`` latency before, during and after, with ratios; writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.edge_http import free_port, load, request_bytes, summarize, wait_ready  # noqa: E402
from sentiedge_core import BUNDLE_DIR  # noqa: E402


class Edge:
    def __init__(self, data: Path, store_max_bytes: int) -> None:
        self.port, self.admin = free_port(), free_port()
        # One worker, as its README figures were measured (EDGE_WORKERS in the environment overrides).
        env = {"EDGE_WORKERS": "1"} | os.environ | {"EDGE_PORT": str(self.port), "EDGE_ADMIN_PORT": str(self.admin),
                            "EDGE_DATA_DIR": str(data),
                            "EDGE_RATE_LIMIT_PER_ADDRESS": "0", "EDGE_RATE_LIMIT_PER_KEY": "0",
                            "EDGE_STORE_MAX_BYTES": str(store_max_bytes), "EDGE_HEADER_TIMEOUT_S": "5",
                            "EDGE_DISK_CHECK_INTERVAL_S": "1", "EDGE_LOG_LEVEL": "warning"}
        self.log = open(data.parent / "edge.log", "w")
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "edge-node"), "serve", "--model-dir",
                                      str(BUNDLE_DIR)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_ready(f"http://127.0.0.1:{self.admin}/readyz", self.proc)
        app = json.loads((data / "dev-app.json").read_text())["apps"][0]
        self.headers = {"x-client-key": app["client_keys"][0],
                        "authorization": f"Bearer {app['server_keys'][0]['key']}"}
        self.data = data

    def call(self, method: str, path: str, body=None, raw: bytes | None = None) -> int:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={**self.headers, "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def disk_mb(self) -> float:
        return sum(p.stat().st_size for p in self.data.rglob("*") if p.is_file()) / (1 << 20)

    def metric(self, name: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=30).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=30)


def healthz_latency(admin: int, n: int = 50) -> dict:
    latencies = []
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=30) as r:
            r.read()
        latencies.append(time.perf_counter() - t0)
    return summarize(latencies, 1.0)


def normal_traffic(edge: Edge, seconds: float) -> dict:
    paths = [request_bytes("GET", f"/v1/personalize?user_id=regular-{i}&region=eu", headers=edge.headers)
             for i in range(20)]
    return asyncio.run(load(edge.port, paths, concurrency=8, seconds=seconds))


def snapshot(edge: Edge, seconds: float) -> dict:
    return {"rss_mb": edge.rss_mb(), "disk_mb": edge.disk_mb(), "store_mb": edge.metric("sentiedge_store_bytes") / 1e6,
            "normal": normal_traffic(edge, seconds), "healthz": healthz_latency(edge.admin)}


def attack_wide_user(edge: Edge, categories: int) -> dict:
    consent = {"purposes": {"personalization": True, "cohort_analytics": True}, "policy_version": "v1"}
    edge.call("PUT", "/v1/users/wide/consent", consent)
    statuses: dict[int, int] = {}
    for start in range(0, categories, 100):
        events = [{"type": "view", "item_id": "x", "category": f"junk/{n}"} for n in range(start, start + 100)]
        s = edge.call("POST", "/v1/users/wide/events", {"events": events, "context": {"region": "eu"}})
        statuses[s] = statuses.get(s, 0) + 1
    t0 = time.perf_counter()
    for region in range(300):
        s = edge.call("GET", f"/v1/personalize?user_id=wide&region=r{region}")
        statuses[s] = statuses.get(s, 0) + 1
    return {"statuses": statuses, "personalize_ms": (time.perf_counter() - t0) / 300 * 1000}


def attack_bad_input(edge: Edge) -> dict:
    statuses: dict[int, int] = {}
    for _ in range(20):
        for s in (edge.call("GET", "/v1/personalize?region=" + "r" * 60_000),
                  edge.call("POST", "/v1/rank", raw=b"[" * 5000 + b"]" * 5000),
                  edge.call("POST", "/v1/users/u/events", raw=b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}")):
            statuses[s] = statuses.get(s, 0) + 1
    return {"statuses": statuses}


def attack_many_users(edge: Edge, users: int) -> dict:
    statuses: dict[int, int] = {}
    consent = {"purposes": {"personalization": True, "cohort_analytics": True}, "policy_version": "v1"}
    for i in range(users):
        s = edge.call("PUT", f"/v1/users/flood-{i}/consent", consent)
        s2 = edge.call("POST", f"/v1/users/flood-{i}/events", {"events": [
            {"type": "like", "item_id": "x", "category": f"c/{k}"} for k in range(10)]})
        for x in (s, s2):
            statuses[x] = statuses.get(x, 0) + 1
    time.sleep(2.5)  # the budget is enforced every EDGE_DISK_CHECK_INTERVAL_S
    return {"statuses": statuses, "evicted": edge.metric("sentiedge_store_evictions_total")}


def attack_deletes(edge: Edge, count: int) -> dict:
    rates = []
    for batch in range(count // 500):
        t0 = time.perf_counter()
        for i in range(500):
            edge.call("DELETE", f"/v1/users/deleted-{batch}-{i}")
        rates.append(500 / (time.perf_counter() - t0))
    return {"first_batch_per_s": rates[0], "last_batch_per_s": rates[-1], "ratio_last_first": rates[-1] / rates[0],
            "outbox_pending": edge.metric("sentiedge_privacy_outbox_pending")}


def attack_slowloris(edge: Edge, connections: int) -> dict:
    held = []
    for _ in range(connections):
        try:
            conn = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(conn)
        except OSError:
            break
    during = healthz_latency(edge.admin, 20)
    time.sleep(6)  # past EDGE_HEADER_TIMEOUT_S
    answers = {}
    for conn in held:
        try:
            head = conn.recv(12)[9:12].decode() or "closed"
        except OSError:
            head = "reset"
        answers[head] = answers.get(head, 0) + 1
        conn.close()
    return {"opened": len(held), "answers": answers, "healthz_during": during}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="normal traffic measured before and after")
    parser.add_argument("--categories", type=int, default=15_000)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--deletes", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--store-max-mb", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        edge = Edge(Path(tmp) / "data", int(args.store_max_mb * 1e6))
        try:
            consent = {"purposes": {"personalization": True}, "policy_version": "v1"}
            for i in range(20):
                edge.call("PUT", f"/v1/users/regular-{i}/consent", consent)
                edge.call("POST", f"/v1/users/regular-{i}/events", {"events": [
                    {"type": "purchase", "item_id": "b", "category": "books"}]})
            before = snapshot(edge, args.seconds)
            attacks = {"wide_user": attack_wide_user(edge, args.categories), "bad_input": attack_bad_input(edge),
                       "many_users": attack_many_users(edge, args.users), "deletes": attack_deletes(edge, args.deletes),
                       "slowloris": attack_slowloris(edge, args.connections)}
            after = snapshot(edge, args.seconds)
            after["evicted"] = edge.metric("sentiedge_store_evictions_total")
            after["writes_refused"] = edge.metric("sentiedge_writes_refused_total")
            after["slow_clients"] = edge.metric("sentiedge_slow_clients_total")
            alive = edge.proc.poll() is None
        finally:
            code = edge.stop()
    result = {"before": before, "after": after, "attacks": attacks, "alive_after_attacks": alive, "sigterm_exit": code,
              "ratios": {"rss": after["rss_mb"] / before["rss_mb"],
                         "normal_p99": after["normal"]["p99_ms"] / before["normal"]["p99_ms"],
                         "normal_rps": after["normal"]["rps"] / before["normal"]["rps"],
                         "healthz_p99_during_slowloris": attacks["slowloris"]["healthz_during"]["p99_ms"]
                         / before["healthz"]["p99_ms"]}}
    print(f"{'':28}{'before':>12}{'after':>12}{'ratio':>8}")
    rows = [("RSS MiB", before["rss_mb"], after["rss_mb"]), ("data dir MiB", before["disk_mb"], after["disk_mb"]),
            (f"store MB (budget {args.store_max_mb:.0f})", before["store_mb"], after["store_mb"]),
            ("personalize req/s", before["normal"]["rps"], after["normal"]["rps"]),
            ("personalize p50 ms", before["normal"]["p50_ms"], after["normal"]["p50_ms"]),
            ("personalize p99 ms", before["normal"]["p99_ms"], after["normal"]["p99_ms"]),
            ("admin /healthz p50 ms", before["healthz"]["p50_ms"], after["healthz"]["p50_ms"]),
            ("admin /healthz p99 ms", before["healthz"]["p99_ms"], after["healthz"]["p99_ms"])]
    for name, a, b in rows:
        print(f"{name:28}{a:12.2f}{b:12.2f}{(b / a if a else 0):8.2f}")
    s = attacks["slowloris"]
    print(f"slowloris: {s['opened']} connections, answers {s['answers']}, admin /healthz p99 during "
          f"{s['healthz_during']['p99_ms']:.2f} ms")
    d = attacks["deletes"]
    print(f"deletes: {d['first_batch_per_s']:.0f}/s first 500, {d['last_batch_per_s']:.0f}/s last 500 "
          f"({d['ratio_last_first']:.2f}x); outbox pending {d['outbox_pending']:.0f}")
    wide = attacks["wide_user"]
    print(f"wide user: statuses {wide['statuses']}, personalize {wide['personalize_ms']:.1f} ms")
    print(f"bad input: statuses {attacks['bad_input']['statuses']}; many users: statuses "
          f"{attacks['many_users']['statuses']}, evicted {attacks['many_users']['evicted']:.0f}")
    print(f"store budget: {after['evicted']:.0f} cold records evicted, {after['writes_refused']:.0f} writes refused; "
          f"{after['slow_clients']:.0f} slow or surplus connections cut")
    print(f"edge alive after the attacks: {alive}; exit code on SIGTERM: {code}")
    out = ROOT / "bench" / "results" / "soak.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
