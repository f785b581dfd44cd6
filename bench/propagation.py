"""Propagation benchmark (not a test). ``make bench-propagation``

Starts a real control plane and measures, on loopback:

* delete → last receipt: from ``Privacy.Delete`` returning to the moment every edge's
  receipt is recorded (``Privacy.Status`` polled every 5 ms);
* rollout → last edge serving: from ``Models.Rollout`` returning to the last edge ACKing
  the new model (real edges: downloaded, verified, loaded, warmed up, swapped);
* key revocation → refused everywhere (real edges): from ``Apps.Revoke`` of a server key
  returning to the moment every edge answers that key with 401 (each polled every 5 ms).

with 3 real ``edge-node serve`` processes, with 3, 30 and 1,000 *simulated* edges, and with
30 simulated edges on a second control-plane replica sharing PostgreSQL with the first (the
deletion is filed on the first; the edges hear of it through the database's LISTEN/NOTIFY):
protocol clients in this process that speak Sync exactly as an edge does (Hello, ACK each
privacy update and assignment at once, heartbeats) but own no store or model, so the
figures are the control plane's fan-out cost. Baseline, same run: one unary operator RPC
round trip (``Privacy.List``); ratios say how many round trips a fan-out costs.
Goal: delete → last receipt p99 under 1 s with 30 edges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protos.sentiedge.v1 import common_pb2, operator_pb2, operator_pb2_grpc, sync_pb2, sync_pb2_grpc  # noqa: E402
from sentiedge_core import BUNDLE_DIR  # noqa: E402
from sentiedge_core.bundle import pack  # noqa: E402

TOKEN = "bench:propagation-token"
AUTH = (("authorization", "Bearer propagation-token"),)
KEY = "bench-pseudonym-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=os.environ | env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def wait_for(check, timeout: float = 120.0, step: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(step)
    raise TimeoutError("benchmark condition not reached")


def pct(values: list[float]) -> dict:
    a = np.asarray(values) * 1000
    return {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max())}


class SimulatedEdge:
    """Speaks Sync like an edge; applies nothing, ACKs at once."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.cursor = 0
        self.serving = ""

    async def run(self, stub, ready: asyncio.Event) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def outgoing():
            while (m := await queue.get()) is not None:
                yield m

        await queue.put(sync_pb2.EdgeMessage(hello=sync_pb2.Hello(node_id=self.node_id, region="bench")))
        call = stub.Sync(outgoing())
        async for message in call:
            kind = message.WhichOneof("kind")
            if kind == "welcome":
                ready.set()
            elif kind == "privacy":
                self.cursor = message.privacy.seq
                await queue.put(sync_pb2.EdgeMessage(ack=sync_pb2.Ack(
                    status=common_pb2.ACK_STATUS_ACK, privacy_seq=message.privacy.seq)))
            elif kind == "model":
                self.serving = message.model.model.manifest_sha256
                await queue.put(sync_pb2.EdgeMessage(ack=sync_pb2.Ack(
                    status=common_pb2.ACK_STATUS_ACK, model=message.model.model)))


async def measure(cp: str, edges_ready, rounds: int, versions: list[str], serving) -> dict:
    async with grpc.aio.insecure_channel(cp) as channel:
        privacy = operator_pb2_grpc.PrivacyStub(channel)
        models = operator_pb2_grpc.ModelsStub(channel)
        await edges_ready()
        rtt, delete = [], []
        for i in range(rounds):
            t0 = time.perf_counter()
            await privacy.List(operator_pb2.ListPrivacyRequests(limit=1), metadata=AUTH)
            rtt.append(time.perf_counter() - t0)
            reply = await privacy.Delete(operator_pb2.DeleteRequest(user_id=f"user-{i}"), metadata=AUTH)
            t0 = time.perf_counter()

            async def completed(rid=reply.request_id):
                s = await privacy.Status(operator_pb2.PrivacyStatusRequest(request_id=rid), metadata=AUTH)
                return s.state == "completed"

            await wait_for(completed)
            delete.append(time.perf_counter() - t0)
        rollout = []
        for version in versions:
            await models.Rollout(operator_pb2.RolloutRequest(name="sentiedge-sentiment", version=version),
                                 metadata=AUTH)
            t0 = time.perf_counter()
            await wait_for(lambda v=version: serving(v), step=0.01)
            rollout.append(time.perf_counter() - t0)
    return {"unary_rtt": pct(rtt), "delete_to_last_receipt": pct(delete),
            "rollout_to_last_edge": pct(rollout) if rollout else None}


def variant(tmp: Path, version: str) -> Path:
    out = tmp / f"bundle-{version}"
    if out.exists():
        return out
    shutil.copytree(BUNDLE_DIR, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = version
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


async def push(cp: str, bundle: Path) -> str:
    tar = bundle.with_suffix(".tar")
    pack(bundle, tar)

    async def chunks():
        with tar.open("rb") as fh:
            while block := fh.read(1 << 20):
                yield operator_pb2.PushChunk(data=block)

    async with grpc.aio.insecure_channel(cp) as channel:
        info = await operator_pb2_grpc.ModelsStub(channel).Push(chunks(), metadata=AUTH)
    return info.model.manifest_sha256


async def with_real_edges(cp: str, tmp: Path, count: int, rounds: int, versions: list[str]) -> dict:
    exe = Path(sys.executable).parent
    procs, urls = [], []
    for i in range(count):
        port = free_port()
        procs.append(spawn([str(exe / "edge-node"), "serve"], {
            "EDGE_PORT": str(port), "EDGE_DATA_DIR": str(tmp / f"edge-{i}"), "EDGE_CONTROL_PLANE": cp,
            "EDGE_NODE_ID": f"real-{i}", "EDGE_PSEUDONYM_KEY": KEY, "EDGE_LOG_LEVEL": "warning",
            "EDGE_SYNC_BACKOFF_MAX_S": "1", "EDGE_WORKERS": os.environ.get("EDGE_WORKERS", "1")},
            tmp / f"edge-{i}.log"))
        urls.append(f"http://127.0.0.1:{port}")

    def readyz(url: str) -> dict | None:
        import urllib.request

        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                return json.loads(r.read())
        except OSError:
            return None

    async def ready():
        async def all_connected():
            states = await asyncio.gather(*(asyncio.to_thread(readyz, u) for u in urls))
            return all(s and s.get("sync") == "connected" for s in states)
        await wait_for(all_connected, timeout=300, step=0.5)

    async def serving(version: str):
        states = await asyncio.gather(*(asyncio.to_thread(readyz, u) for u in urls))
        return all(s and s.get("version") == version for s in states)

    try:
        result = await measure(cp, ready, rounds, versions, serving)
        client_key = json.loads((tmp / "cp-real3" / "dev-app.json").read_text())["apps"][0]["client_keys"][0]
        result["revoke_to_refused_everywhere"] = await key_revocation(cp, urls, client_key, rounds)
        return result
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)


async def key_revocation(cp: str, urls: list[str], client_key: str, rounds: int) -> dict:
    """Add a server key, wait until every edge accepts it, revoke it, time until all refuse it."""
    import urllib.error
    import urllib.request

    def status(url: str, key: str) -> int:
        req = urllib.request.Request(url + "/v1/users/bench-user/consent",
                                     headers={"x-client-key": client_key, "authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    async def everywhere(key: str, expected: int) -> bool:
        codes = await asyncio.gather(*(asyncio.to_thread(status, u, key) for u in urls))
        return all(c == expected for c in codes)

    times = []
    async with grpc.aio.insecure_channel(cp) as channel:
        apps = operator_pb2_grpc.AppsStub(channel)
        for i in range(rounds):
            key = (await apps.AddServerKey(operator_pb2.AddServerKeyRequest(
                name="dev", key_name=f"bench-{i}", scopes=["users:read"]), metadata=AUTH)).server_key
            await wait_for(lambda key=key: everywhere(key, 200), timeout=60)
            started = time.perf_counter()
            await apps.Revoke(operator_pb2.RevokeAppRequest(name="dev", server_key=f"bench-{i}"), metadata=AUTH)
            await wait_for(lambda key=key: everywhere(key, 401), timeout=60)
            times.append(time.perf_counter() - started)
    return pct(times)


async def with_simulated_edges(cp: str, count: int, rounds: int, versions: list[str], shas: dict) -> dict:
    edges = [SimulatedEdge(f"sim-{count}-{i}") for i in range(count)]
    readies = [asyncio.Event() for _ in edges]
    channels = [grpc.aio.insecure_channel(cp) for _ in range(max(1, count // 100))]
    tasks = [asyncio.create_task(e.run(sync_pb2_grpc.EdgeSyncStub(channels[i % len(channels)]), r))
             for i, (e, r) in enumerate(zip(edges, readies, strict=False))]

    async def ready():
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)

    async def serving(version: str):
        return all(e.serving == shas[version] for e in edges)

    try:
        return await measure(cp, ready, rounds, versions, serving)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in channels:
            await c.close()


def start_cp(name: str, tmp: Path, **extra: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    proc = spawn([str(Path(sys.executable).parent / "control-plane"), "serve"], {
        "CP_PORT": str(port), "CP_DATA_DIR": str(tmp / f"cp-{name}"), "CP_ADMIN_TOKENS": TOKEN,
        "CP_PSEUDONYM_KEY": KEY, "CP_LOG_LEVEL": "warning", "CP_HEARTBEAT_INTERVAL_S": "2",
        # The simulated edges are protocol clients with no credential: development mode, on loopback only.
        "CP_ALLOW_ANONYMOUS_NODES": "true", **extra}, tmp / f"cp-{name}.log")
    return f"127.0.0.1:{port}", proc


async def run_replicas_case(tmp: Path, count: int, rounds: int) -> dict:
    """Deletions filed on replica A; ``count`` simulated edges connected to replica B."""
    from tests.postgres import Postgres

    server = Postgres()
    procs = []
    try:
        url = server.new_database()
        a, proc_a = start_cp("replica-a", tmp, CP_DATABASE_URL=url)
        procs.append(proc_a)
        await wait_for(lambda: _up(a), step=0.2)
        b, proc_b = start_cp("replica-b", tmp, CP_DATABASE_URL=url)
        procs.append(proc_b)
        await wait_for(lambda: _up(b), step=0.2)
        edges = [SimulatedEdge(f"rep-{i}") for i in range(count)]
        readies = [asyncio.Event() for _ in edges]
        async with grpc.aio.insecure_channel(b) as channel:
            tasks = [asyncio.create_task(e.run(sync_pb2_grpc.EdgeSyncStub(channel), r))
                     for e, r in zip(edges, readies, strict=False)]
            try:
                async def ready():
                    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
                return await measure(a, ready, rounds, [], lambda v: True)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        server.stop()


async def _up(cp: str) -> bool:
    try:
        async with grpc.aio.insecure_channel(cp) as channel:
            await operator_pb2_grpc.NodesStub(channel).List(operator_pb2.ListNodesRequest(), metadata=AUTH, timeout=1)
        return True
    except grpc.aio.AioRpcError:
        return False


async def run_case(name: str, tmp: Path, body) -> dict:
    cp, proc = start_cp(name, tmp)
    try:
        await wait_for(lambda: _up(cp), step=0.2)
        shas = {}
        for version in ("bench-1", "bench-2"):
            shas[version] = await push(cp, variant(tmp, version))
        return await body(cp, shas)
    finally:
        proc.terminate()
        proc.wait(30)


CASES = ("real3", "sim3", "sim30", "sim1000", "replica30")


async def main_async(args) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        versions = ["bench-1", "bench-2"]
        if "real3" in args.cases:
            results["3 real edges"] = await run_case(
                "real3", tmp, lambda cp, shas: with_real_edges(cp, tmp, 3, args.rounds, versions))
        for count in (3, 30, 1000):
            if f"sim{count}" in args.cases:
                results[f"{count} simulated edges"] = await run_case(
                    f"sim{count}", tmp,
                    lambda cp, shas, c=count: with_simulated_edges(cp, c, args.rounds, versions, shas))
        if "replica30" in args.cases:
            results["30 on another replica"] = await run_replicas_case(tmp, 30, args.rounds)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="deletions per case")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "propagation.json")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES)} (default: all)")
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown or not args.cases:
        parser.error(f"unknown case(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(CASES)}")
    results = asyncio.run(main_async(args))
    print(f"\n{'case':<22}{'unary RPC p50':>14}{'delete→last receipt p50':>25}{'p99':>9}{'ratio p50':>10}"
          f"{'rollout→last edge (2 rollouts)':>32}")
    for name, r in results.items():
        d, u, ro = r["delete_to_last_receipt"], r["unary_rtt"], r["rollout_to_last_edge"]
        rollout = f"{ro['p50_ms']:>26.0f}ms max {ro['max_ms']:.0f}" if ro else f"{'-':>28}"
        print(f"{name:<22}{u['p50_ms']:>12.1f}ms{d['p50_ms']:>23.1f}ms{d['p99_ms']:>7.1f}ms"
              f"{d['p50_ms'] / u['p50_ms']:>9.1f}x{rollout}")
    if "3 real edges" not in results:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        return 0
    revoked = results["3 real edges"]["revoke_to_refused_everywhere"]
    print(f"\nserver key revoked → refused by all 3 real edges: p50 {revoked['p50_ms']:.0f} ms, "
          f"p99 {revoked['p99_ms']:.0f} ms, max {revoked['max_ms']:.0f} ms ({revoked['n']} revocations; "
          f"a unary RPC p50 is {results['3 real edges']['unary_rtt']['p50_ms']:.1f} ms, "
          f"ratio {revoked['p50_ms'] / results['3 real edges']['unary_rtt']['p50_ms']:.1f}x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
