"""The events path with five topics configured against none (``make bench-aspects``; not a test).

One edge app (``create_app``, the shipped model, a fresh data dir) driven in-process over ASGI by
one client, one request at a time: ``POST /v1/users/{id}/events`` with one review event whose
text is scored (the users granted sentiment, personalization and cohort analytics). The texts are
the 160 customer validation texts, and as many again made of two of them ("A. B" or "A, but b"),
since reviews are often more than one clause. Each round runs both systems on the same texts, in
alternating order: ``none`` (the tenant has no topics) and ``five`` (the first five starter
topics), the topic set put into the node's TopicBook between them (its examples embedded before the
round, as after the first request of a new version). The ratio of the p50 latencies is taken per
round; the median over the rounds and its range are printed, with p50/p99 of each, the aspects
found, and this process's CPU time per request (less moved by other load on a shared host than
latency is; the inference threads are this process's). Goal: five / none p50 <= 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar.testing import AsyncTestClient  # noqa: E402

from edge_node.config import load_settings  # noqa: E402
from edge_node.http.app import create_app  # noqa: E402
from sentiedge_core import BUNDLE_DIR  # noqa: E402
from sentiedge_core.access import generate_key_pair  # noqa: E402
from sentiedge_core.inference import SentimentModel  # noqa: E402
from sentiedge_core.topics import TopicSet, starter  # noqa: E402

HEADERS = {"x-client-key": "ck_shop", "authorization": "Bearer sk_shop_backend"}
USERS = 50


def texts(seed: int = 7) -> list[str]:
    with open(ROOT / "models" / "customer_validation.csv", encoding="utf-8", newline="") as f:
        single = [row["text"] for row in csv.DictReader(f)]
    rng = random.Random(seed)
    pairs = []
    for _ in range(len(single)):
        a, b = rng.sample(single, 2)
        pairs.append(f"{a}. {b}" if rng.random() < 0.5 else f"{a}, but {b[0].lower()}{b[1:]}")
    out = single + pairs
    rng.shuffle(out)
    return out


def apps_file(directory: Path) -> Path:
    _, public = generate_key_pair("EdDSA")
    path = directory / "apps.json"
    path.write_text(json.dumps({"apps": [{
        "name": "shop", "tenant": "shop", "client_keys": ["ck_shop"],
        "signing_keys": [{"kid": "shop-1", "alg": "EdDSA", "public_key": public}],
        "server_keys": [{"name": "bench", "key": "sk_shop_backend", "scopes": ["events:write", "consent:write"]}]}]}))
    return path


async def one_system(client: AsyncTestClient, corpus: list[str]) -> tuple[list[float], int, float]:
    """Each request's latency, the aspects answered, and this process's CPU seconds per request."""
    latencies, aspects = [], 0
    cpu = time.process_time()
    for i, text in enumerate(corpus):
        body = {"context": {"region": "eu", "device": "mobile"},
                "events": [{"type": "review", "item_id": f"item-{i % 40}", "category": "Shop", "text": text}]}
        started = time.perf_counter()
        r = await client.post(f"/v1/users/u{i % USERS}/events", headers=HEADERS, json=body)
        latencies.append(time.perf_counter() - started)
        if r.status_code != 200:
            raise SystemExit(f"events answered {r.status_code}: {r.text}")
        aspects += len(r.json()["results"][0].get("sentiment", {}).get("aspects", []))
    return latencies, aspects, (time.process_time() - cpu) / len(corpus)


async def run(rounds: int, per_round: int) -> None:
    model = SentimentModel(BUNDLE_DIR, threads=1)
    corpus = texts()
    five = TopicSet(tenant="shop", version=1, topics=starter()[:5])
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({"EDGE_DATA_DIR": str(Path(tmp) / "edge"), "EDGE_APPS_FILE": str(apps_file(Path(tmp))),
                                  "EDGE_RATE_LIMIT_PER_ADDRESS": "0", "EDGE_RATE_LIMIT_PER_KEY": "0",
                                  "EDGE_LABEL_SAMPLE_RATE": "0"})
        app = create_app(settings, model=model)
        async with AsyncTestClient(app) as client:
            node = app.state.node
            for u in range(USERS):
                await client.put(f"/v1/users/u{u}/consent", headers=HEADERS, json={"policy_version": "v1", "purposes": {
                    "sentiment": True, "personalization": True, "cohort_analytics": True}})
            node.topic_book.set(five)
            node.aspects.index(node.model, five)  # examples embedded once per set version, before timing
            await one_system(client, corpus[:40])  # warm-up, both ways
            node.topic_book.set(TopicSet(tenant="shop"))
            await one_system(client, corpus[:40])
            p50 = {"none": [], "five": []}
            p99 = {"none": [], "five": []}
            cpu = {"none": [], "five": []}
            found = 0
            ratios = []
            for r in range(rounds):
                chunk = [corpus[(r * per_round + i) % len(corpus)] for i in range(per_round)]
                for system in (("none", "five") if r % 2 == 0 else ("five", "none")):
                    node.topic_book.set(five if system == "five" else TopicSet(tenant="shop"))
                    latencies, aspects, cpu_s = await one_system(client, chunk)
                    cpu[system].append(cpu_s * 1000)
                    p50[system].append(float(np.percentile(latencies, 50)) * 1000)
                    p99[system].append(float(np.percentile(latencies, 99)) * 1000)
                    found += aspects if system == "five" else 0
                ratios.append(p50["five"][-1] / p50["none"][-1])
                print(f"round {r + 1}: p50 none {p50['none'][-1]:.2f} ms, five {p50['five'][-1]:.2f} ms, "
                      f"ratio {ratios[-1]:.2f}; CPU per request none {cpu['none'][-1]:.2f} ms, "
                      f"five {cpu['five'][-1]:.2f} ms", flush=True)
    median = statistics.median
    print(f"\n{rounds} rounds x {per_round} requests per system, one at a time (model {model.version})")
    for system in ("none", "five"):
        print(f"  {system:5s} p50 {median(p50[system]):.2f} ms  p99 {median(p99[system]):.2f} ms  "
              f"CPU {median(cpu[system]):.2f} ms a request (medians of rounds)")
    print(f"  aspects found with five topics: {found / (rounds * per_round):.2f} per text")
    print(f"  five / none p50: median {median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}); goal <= 1.5")
    cpu_ratios = [f / n for f, n in zip(cpu["five"], cpu["none"], strict=True)]
    print(f"  five / none CPU a request: median {median(cpu_ratios):.2f} "
          f"(range {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=160)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.per_round))


if __name__ == "__main__":
    main()
