"""A backfill's history reaches a fresh edge: edge-node batch writes daily aggregates,
control-plane cohorts import stores them for a tenant, and an edge that never saw a user of
that cohort answers its cold start from them (source "cohort")."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cluster import CLI, cp_env, edge_env, eventually, operator, operator_args
from tests.e2e.http import call
from tests.e2e.test_tenants import Client

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
LOVED = ["I love this plant, it is thriving and beautiful", "Wonderful seeds, everything sprouted. Great value!",
         "Best garden tools I have ever bought, superb quality"]
HATED = ["The boots leaked on the first day, awful", "Terrible shoes, the sole fell off, waste of money"]


def test_imported_history_becomes_a_fresh_edge_s_cold_start_prior(spawn, bundle_dir, tmp_path):
    src = tmp_path / "history.jsonl"
    with src.open("w") as fh:
        for day in (1, 2, 3):
            for u in range(4):  # four users a day in eu/tv at night: garden loved, shoes hated
                for text, category in [(LOVED[u % 3], "Garden"), (HATED[u % 2], "Shoes")]:
                    fh.write(json.dumps({"text": text, "created_at": f"2026-03-0{day}T23:{10 + u}:00Z",
                                         "category": category, "region": "EU", "device": "tv",
                                         "user_id": f"user-{u}"}) + "\n")
    batch = subprocess.run([sys.executable, "-m", "edge_node", "batch", str(src), "--out", str(tmp_path / "out"),
                            "--workers", "1", "--min-size", "3", "--model-dir", str(bundle_dir), "--no-progress"],
                           capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ)
    assert batch.returncode == 0, batch.stderr
    daily = tmp_path / "out" / "daily.parquet"

    _, cp = spawn("control-plane", "serve", env=cp_env(CP_COHORT_MIN_SIZE="3"))
    shop, clinic = Client(cp, "shop"), Client(cp, "clinic")  # two brands: each app its own tenant
    done = operator(cp, "cohorts", "import", str(daily), "--tenant", "shop")
    assert (done["days"], done["cohorts"], done["tenant"]) == (3, 2, "shop")  # eu/tv/night and all, 3 days each
    assert done["aggregates"] == 6
    assert operator(cp, "cohorts", "import", str(daily), "--tenant", "shop") == done  # again: replaced, not added
    for args, words in [(["--tenant", "nobody"], "no tenant 'nobody'"),
                        ([], "name the user's tenant (--tenant)")]:  # several tenants: one must be named
        refused = subprocess.run([CLI, *operator_args(cp), "cohorts", "import", str(daily), *args],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and words in refused.stderr, refused.stderr
    audit = subprocess.run([CLI, *operator_args(cp), "--json", "audit"], capture_output=True, text=True, timeout=60)
    assert "tenant shop: 18 daily rows, 3 days, 2 cohorts from daily.parquet" in audit.stdout

    import pyarrow as pa
    import pyarrow.parquet as pq

    small = tmp_path / "small.parquet"  # a row under the control plane's minimum size is refused
    pq.write_table(pa.Table.from_pylist([{"day": "2026-03-04", "cohort": "all", "category": "*", "users": 2,
                                          "texts": 9, "negative": 1, "sentiment_mean": 0.5}]), small)
    refused = subprocess.run([CLI, *operator_args(cp), "cohorts", "import", str(small), "--tenant", "shop"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr and "minimum size 3" in refused.stderr
    empty = tmp_path / "empty.parquet"  # a backfill whose days were all under its minimum: no "imported 0"
    pq.write_table(pa.Table.from_pylist([{"day": "2026-03-04", "cohort": "all", "category": "*", "users": 2,
                                          "texts": 9, "negative": 1, "sentiment_mean": 0.5}]).slice(0, 0), empty)
    refused = subprocess.run([CLI, *operator_args(cp), "cohorts", "import", str(empty), "--tenant", "nobody"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "holds no daily rows" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # one line, no traceback

    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-fresh", tmp_path))
    query = "/v1/personalize?region=eu&device=tv&daypart=night"
    cold = eventually(lambda: (d := call(edge, "GET", query, headers={"x-client-key": shop.client_key})[1])
                      .get("source") == "cohort" and d, what="the imported prior at a fresh edge")
    affinities = [a["category"] for a in cold["affinities"]]
    assert affinities[0] == "garden" and "12 user-windows" in cold["reason"], cold
    other = call(edge, "GET", query, headers={"x-client-key": clinic.client_key})  # the shop's history only
    assert other[0] == 200 and other[1]["source"] != "cohort" and not other[1]["affinities"], other
