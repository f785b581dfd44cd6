"""edge-node batch throughput: one Dask worker against two, and one worker against the edge's
in-process engine, on the same file, in interleaved rounds (make bench-batch).

The file: ``--texts`` records (default 20,000) drawn from the shipped customer, out-of-domain
and everyday texts, with times over a year, categories, regions, devices and users. Each round
runs, in a rotating order:

* ``in-process``: the edge's engine in this process: ``SentimentModel(threads=1)`` and the
  language gate through ``edge_node.scoring.judge`` (what every worker runs), the CSV read with
  the csv module; nothing written.
* ``2 engines``: two processes each running the in-process engine on half the texts, no Dask:
  how far two processes can scale on this machine at that moment (others' load included).
* ``1 worker`` / ``2 workers``: ``edge_node.batch.job.run`` on an already started LocalCluster
  (one thread, one ONNX Runtime thread per worker process) into a fresh output directory:
  planning, the bundle sent and loaded once per worker, scoring, Parquet by day, the daily
  aggregates; so its texts/s counts everything but the cluster's start.

Ratios are of medians over the rounds, measured in the same run. Texts per CPU-second (the
worker processes' user+system time; this process's for in-process) shows the cost per core
apart from how many cores were free, and ``cores`` the CPU-seconds the scoring processes got per
second of the run: on a shared machine two workers can only scale as far as two cores are idle,
so the load average is printed too. Memory per worker is each worker
process's peak resident set (``ru_maxrss``) after the rounds.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCES = ["models/customer_validation.csv", "models/customer_train.csv", "models/out_of_domain.csv",
           "tests/data/everyday_short.csv"]


def make_history(path: Path, n: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    texts = [r["text"] for s in SOURCES for r in csv.DictReader((ROOT / s).open(encoding="utf-8"))]
    start = 1735689600  # 2025-01-01
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "created_at", "category", "region", "device", "user_id"])
        for i in range(n):
            w.writerow([i, rng.choice(texts), start + rng.randrange(365 * 86400),
                        rng.choice(["beauty/skincare", "garden", "shoes", "electronics"]),
                        rng.choice(["eu", "us", "apac"]), rng.choice(["mobile", "desktop"]), f"u{rng.randrange(5000)}"])


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def in_process(path: Path, model_dir: Path) -> tuple[float, float]:
    from edge_node.scoring import judge
    from sentiedge_core.inference import SentimentModel
    from sentiedge_core.language import LanguageGate

    started, cpu = time.perf_counter(), cpu_seconds()
    model = SentimentModel(model_dir, threads=1)
    texts = [r["text"] for r in csv.DictReader(path.open(encoding="utf-8", newline=""))]
    judge(model, LanguageGate(("en",)), texts, batch_size=64)
    return len(texts) / (time.perf_counter() - started), len(texts) / (cpu_seconds() - cpu)


def _engine(path: str, model_dir: str, part: int, parts: int) -> None:
    from edge_node.scoring import judge
    from sentiedge_core.inference import SentimentModel
    from sentiedge_core.language import LanguageGate

    model = SentimentModel(Path(model_dir), threads=1)
    texts = [r["text"] for r in csv.DictReader(Path(path).open(encoding="utf-8", newline=""))][part::parts]
    judge(model, LanguageGate(("en",)), texts, batch_size=64)


def engines(path: Path, model_dir: Path, n: int) -> tuple[float, float]:
    """``n`` processes each running the in-process engine on 1/n of the texts (no Dask): the
    scaling this machine allows right now, to read the Dask ratio against."""
    import multiprocessing

    texts = sum(1 for _ in csv.DictReader(path.open(encoding="utf-8", newline="")))
    context = multiprocessing.get_context("spawn")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    procs = [context.Process(target=_engine, args=(str(path), str(model_dir), i, n)) for i in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return texts / seconds, texts / used


def on_cluster(client, path: Path, model_dir: Path, work: Path, rows: int) -> tuple[float, float]:
    """(texts/s, texts per CPU-second of the worker processes)."""
    from edge_node.batch.job import Options, run

    out = work / f"out-{time.time_ns()}"
    cpu = sum(client.run(cpu_seconds).values())
    started = time.perf_counter()
    summary = run(str(path), Options(out=str(out)), model_dir=model_dir, rows_per_partition=rows, client=client,
                  progress=False, time_given=False, log=lambda _: None)
    seconds = time.perf_counter() - started
    used = sum(client.run(cpu_seconds).values()) - cpu
    shutil.rmtree(out, ignore_errors=True)
    return summary.rows / seconds, summary.rows / used


def peak_rss_mib(client) -> list[float]:
    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    return sorted(client.run(peak).values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--partition-rows", type=int, default=1000)
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from sentiedge_core import BUNDLE_DIR

    model_dir = args.model_dir or BUNDLE_DIR
    work = Path(tempfile.mkdtemp(prefix="sentiedge-bench-batch-"))
    try:
        path = work / "history.csv"
        make_history(path, args.texts)
        clusters = {n: LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                    memory_limit=0) for n in (1, 2)}
        clients = {n: Client(c) for n, c in clusters.items()}
        runs = {
            "in-process": lambda: in_process(path, model_dir),
            "1 worker": lambda: on_cluster(clients[1], path, model_dir, work, args.partition_rows),
            "2 workers": lambda: on_cluster(clients[2], path, model_dir, work, args.partition_rows),
            "2 engines": lambda: engines(path, model_dir, 2),
        }
        rates: dict[str, list[float]] = {name: [] for name in runs}
        per_cpu: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        loads = [os.getloadavg()[0]]
        for r in range(args.rounds):
            # A rotating order: no configuration always goes first.
            for name in names[r % len(names):] + names[: r % len(names)]:
                rate, efficiency = runs[name]()
                rates[name].append(rate)
                per_cpu[name].append(efficiency)
                loads.append(os.getloadavg()[0])
                print(f"round {r + 1}: {name:<11} {rate:8.1f} texts/s, {efficiency:6.1f} texts per CPU-second",
                      file=sys.stderr, flush=True)
        memory = {n: peak_rss_mib(clients[n]) for n in (1, 2)}
        for c in clients.values():
            c.close()
        for c in clusters.values():
            c.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = {name: statistics.median(v) for name, v in rates.items()}
    cores = os.cpu_count()
    print(f"\nedge-node batch, {args.texts} texts, {args.rounds} interleaved rounds, {cores} cores "
          f"(1-minute load average {min(loads):.1f}-{max(loads):.1f} during the run), partitions of "
          f"{args.partition_rows}, bundle {model_dir.name}")
    print(f"{'configuration':<14} {'texts/s (each round)':<28} {'median':>8}  {'texts/CPU-s':>11}  {'cores':>5}  ratio")
    baselines = {"1 worker": ("in-process", 0.9), "2 workers": ("1 worker", 1.7), "2 engines": ("in-process", None)}
    for name, values in rates.items():
        each = ", ".join(f"{v:.0f}" for v in values)
        ratio = ""
        if name in baselines:
            base, target = baselines[name]
            x = median[name] / median[base]
            ratio = f"{x:.2f}x {base}" + (f" (target >= {target}x: {'met' if x >= target else 'MISSED'})" if target
                                          else " (the ceiling two processes reach on this machine now, no Dask)")
        cores_used = statistics.median(r / c for r, c in zip(values, per_cpu[name], strict=False))
        print(f"{name:<14} {each:<28} {median[name]:8.0f}  {statistics.median(per_cpu[name]):11.0f}  "
              f"{cores_used:5.2f}  {ratio}")
    efficiency = statistics.median(per_cpu["2 workers"]) / statistics.median(per_cpu["1 worker"])
    print(f"cores: CPU-seconds the scoring processes got per second of the run. Per CPU-second two workers score "
          f"{efficiency:.2f}x what one does: with two idle cores, 2 workers ~ {2 * efficiency:.2f}x 1 worker "
          "(a projection; the measured ratio is above)")
    for n, peaks in memory.items():
        print(f"peak RSS per worker ({n} worker{'s' if n > 1 else ''}): " + ", ".join(f"{m:.0f} MiB" for m in peaks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
