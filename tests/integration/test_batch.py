"""edge-node batch on a real Dask cluster: two worker processes, the real bundle.

One LocalCluster (2 processes, 1 thread each) serves every test of the module; each test
registers the bundle plugin as the CLI does (once per worker). Checked: equality with
``edge-node score`` on the same texts, a rerun that skips finished partitions, a worker killed
while it scores a partition (the partition is run again, once), and the CLI end to end.
"""

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
distributed = pytest.importorskip("distributed")

from distributed.diagnostics.plugin import WorkerPlugin  # noqa: E402

from edge_node.batch.job import Options, finished, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["models/customer_validation.csv", "models/out_of_domain.csv", "tests/data/everyday_short.csv"]


def history(path: Path, n: int, seed: int = 3) -> Path:
    """A small history: texts from the shipped validation sets, blanks, a French text, quoted
    newlines, ISO and epoch times over a week, categories, regions, devices and users."""
    rng = random.Random(seed)
    texts = [r["text"] for s in SOURCES for r in csv.DictReader((ROOT / s).open(encoding="utf-8"))]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "created_at", "category", "region", "device", "user_id", "label"])
        for i in range(n):
            text = rng.choice(texts)
            if i % 37 == 5:
                text = "  "
            elif i % 53 == 7:
                text = "Le service était lent et le repas froid, je ne reviendrai pas."
            elif i % 29 == 3:
                text = 'Great "value",\nbut the strap broke'
            when = 1767225600 + rng.randrange(7 * 86400)
            w.writerow([i, text, when if i % 3 else f"{pd.Timestamp(when, unit='s', tz='UTC').isoformat()}",
                        rng.choice(["Beauty/Skincare", "garden", "Beauty/skincare"]), rng.choice(["eu", "us"]),
                        rng.choice(["mobile", "desktop"]), f"u{rng.randrange(40)}", rng.choice(["1", "0"])])
    return path


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       memory_limit=0)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def backfill(client, source, out, bundle_dir, **kw):
    return run(str(source), Options(out=str(out), min_size=kw.pop("min_size", 2)), model_dir=bundle_dir,
               rows_per_partition=kw.pop("rows_per_partition", 64), client=client, progress=False, time_given=False,
               log=lambda _: None, **kw)


def read_scored(out: Path):
    return pd.read_parquet(out / "scored").sort_values("id", key=lambda s: s.astype(int)).reset_index(drop=True)


def test_two_workers_score_as_edge_node_score_does(client, bundle_dir, tmp_path):
    src = history(tmp_path / "history.csv", 400)
    summary = backfill(client, src, tmp_path / "out", bundle_dir)
    assert summary.rows == 400 and summary.skipped == 0 and summary.partitions == 7
    markers = [json.loads(p.read_text()) for p in (tmp_path / "out" / "_partitions").glob("*.json")]
    assert len({m["worker"] for m in markers}) == 2  # both worker processes scored

    edge = subprocess.run([sys.executable, "-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file",
                           str(src), "--out", str(tmp_path / "edge.jsonl")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert edge.returncode == 0, edge.stderr
    expected = [json.loads(line) for line in (tmp_path / "edge.jsonl").read_text().splitlines()]
    got = read_scored(tmp_path / "out")
    assert len(got) == len(expected)
    for row, want in zip(got.to_dict("records"), expected, strict=False):
        assert row["id"] == want["id"] and row["text"] == want["text"] and row["input_label"] == want["input_label"]
        assert row["created_at"] == want["created_at"] and row["user_id"] == want["user_id"]
        if not want["text"].strip():  # the API's rule, in both: no result, empty_text
            assert pd.isna(row["label"]) and row["error"] == want["error"] == "empty_text"
            continue
        for field in ("label", "score", "confidence", "stage", "model", "version"):
            assert row[field] == want[field], (field, row["text"])
        assert (None if pd.isna(row["language"]) else row["language"]) == want.get("language")
    assert (got["label"] == "unsupported_language").sum() > 0 and (got["error"] == "empty_text").sum() > 0
    assert set(got["day"].astype(str)) == {f"2026-01-0{d}" for d in range(1, 8)}
    assert set(got["cohort"]) <= {f"{r}/{d}/{p}" for r in ("eu", "us") for d in ("mobile", "desktop")
                                  for p in ("morning", "afternoon", "evening", "night")}

    days = pd.read_parquet(tmp_path / "out" / "daily.parquet")
    everyone = days[(days.cohort == "all") & (days.category == "*")]
    judged = got[got["label"].notna() & (got["label"] != "unsupported_language")]
    assert everyone["texts"].sum() == len(judged)
    assert everyone["negative"].sum() == (judged["label"] == "negative").sum()
    day1 = judged[judged["day"].astype(str) == "2026-01-01"]
    row = everyone[everyone.day == "2026-01-01"].iloc[0]
    assert row["sentiment_mean"] == pytest.approx(day1["score"].mean(), abs=1e-6)
    assert row["users"] == day1["user_id"].nunique()
    assert set(days.category) == {"*", "beauty/skincare", "garden"}  # one category, however it was spelled
    assert (days["users"] >= 2).all()

    again = backfill(client, src, tmp_path / "out", bundle_dir)  # a rerun skips every finished partition
    assert (again.skipped, again.rows) == (7, 0)
    assert read_scored(tmp_path / "out").equals(got)
    assert pd.read_parquet(tmp_path / "out" / "daily.parquet").equals(days)


class KillOnce(WorkerPlugin):
    """Kills the worker process the first time it starts a task of the chosen partition."""

    name = "kill-once"

    def __init__(self, key_part: str, sentinel: str) -> None:
        self.key_part, self.sentinel = key_part, sentinel

    def setup(self, worker) -> None:
        self.worker = worker

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish == "executing" and self.key_part in str(key) and not os.path.exists(self.sentinel):
            Path(self.sentinel).write_text(self.worker.address)
            os._exit(1)  # as a kill -9 would: no cleanup, no goodbye to the scheduler


def test_a_killed_worker_s_partition_is_run_again_once(client, bundle_dir, tmp_path):
    from edge_node.batch.inputs import plan

    src = history(tmp_path / "history.csv", 300, seed=5)
    parts = plan(str(src), rows_per_partition=64)
    victim = parts[2].id
    sentinel = tmp_path / "killed"
    client.register_plugin(KillOnce(f"sentiedge-score-{victim}", str(sentinel)))
    try:
        summary = backfill(client, src, tmp_path / "out", bundle_dir)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert sentinel.exists()  # a worker died while it held the partition
    assert summary.rows == 300 and summary.skipped == 0
    assert finished(str(tmp_path / "out")) == {p.id for p in parts}
    got = read_scored(tmp_path / "out")
    assert got["id"].astype(int).tolist() == list(range(300))  # every record once
    assert (tmp_path / "out" / "_scored" / f"part-{victim}.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "out" / "scored").glob("day=*/*")) == ["part-0.parquet"] * 7
    assert all(not p.name.endswith(".tmp") for p in (tmp_path / "out").rglob("*"))
    client.wait_for_workers(2, timeout=60)  # the nanny brought the worker back, with the bundle
    assert sum(client.run(lambda dask_worker: "sentiedge-bundle" in dask_worker.plugins).values()) == 2


class FailOnce(WorkerPlugin):
    """The first time the chosen partition starts, its input file is moved away (the task raises
    FileNotFoundError); when it starts again, the file is put back."""

    name = "fail-once"

    def __init__(self, key_part: str, path: str) -> None:
        self.key_part, self.path = key_part, path

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing" or self.key_part not in str(key):
            return
        if not os.path.exists(self.path + ".failed"):
            os.rename(self.path, self.path + ".away")
            Path(self.path + ".failed").write_text("1")
        elif os.path.exists(self.path + ".away"):
            os.rename(self.path + ".away", self.path)


def test_a_failed_partition_is_retried(client, bundle_dir, tmp_path):
    from edge_node.batch.inputs import plan

    src = history(tmp_path / "history.csv", 120, seed=6)
    parts = plan(str(src), rows_per_partition=200)  # one partition: no other task reads the file meanwhile
    client.register_plugin(FailOnce(f"sentiedge-score-{parts[0].id}", str(src)))
    try:
        summary = backfill(client, src, tmp_path / "out", bundle_dir, rows_per_partition=200)
    finally:
        client.unregister_worker_plugin("fail-once")
    assert Path(str(src) + ".failed").exists() and src.exists()  # it failed once, then ran again
    assert summary.rows == 120 and finished(str(tmp_path / "out")) == {p.id for p in parts}
    assert read_scored(tmp_path / "out")["id"].astype(int).tolist() == list(range(120))


def test_edge_node_batch_command(bundle_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"body": t, "timestamp": f"2026-02-0{1 + i % 2}T12:00:00Z", "topic": "Shoes"}
            for i, t in enumerate(["I love these shoes", "They fell apart in a week", "", "Perfect fit"] * 5)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "edge_node", "batch", str(src), "--out", str(tmp_path / "out"), "--column", "body",
           "--category-column", "topic", "--workers", "1", "--min-size", "3", "--model-dir", str(bundle_dir),
           "--partition-rows", "8"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "scored 20 records" in r.stderr and "daily rows over 2 days" in r.stderr
    days = pd.read_parquet(tmp_path / "out" / "daily.parquet")
    assert sorted(days.category.unique()) == ["*", "shoes"] and (days.users == days.texts).all()  # no user column
    total = days[days.category == "*"].set_index("day")
    assert total["texts"].to_dict() == {"2026-02-01": 5, "2026-02-02": 10}
    assert total["empty"].to_dict() == {"2026-02-01": 5, "2026-02-02": 0}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert r.returncode == 0 and "3 of 3 partitions finished earlier" in r.stderr
    bad = subprocess.run([*cmd[:5], "--column", "body", "--out", str(tmp_path / "out2"), "--time-column", "when",
                          "--model-dir", str(bundle_dir), "--workers", "1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert bad.returncode == 2 and "no time column 'when'" in bad.stderr


def test_edge_node_batch_on_an_existing_cluster(client, bundle_dir, tmp_path):
    src = history(tmp_path / "history.csv", 150, seed=9)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "edge_node", "batch", str(src), "--out", str(tmp_path / "out"),
                        "--scheduler", client.scheduler.address, "--model-dir", str(bundle_dir), "--min-size", "2",
                        "--partition-rows", "50"], capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert f"2 workers at {client.scheduler.address}" in r.stderr and "scored 150 records" in r.stderr
    assert "text/s" in r.stderr  # the progress bar's rate
    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2  # the cluster is the caller's: still up
    assert len(read_scored(tmp_path / "out")) == 150
