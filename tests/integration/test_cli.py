import csv
import json
import subprocess
import sys
from pathlib import Path

from protos.generate import generate, proto_files

ROOT = Path(__file__).resolve().parents[2]


def run(*args, **kw):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300, **kw)


def test_edge_node_score_prints_a_table_for_texts(bundle_dir):
    r = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "What a fantastic day!", "This is awful.")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[1].startswith("positive") and lines[2].startswith("negative")


def test_edge_node_score_file_writes_jsonl_and_csv(bundle_dir, tmp_path):
    src = tmp_path / "reviews.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text"])
        w.writerows([[1, "loved it"], [2, "hated it"], [3, "a masterpiece of boredom"]])
    out = tmp_path / "out.jsonl"
    r = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(src), "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["text"] for row in rows] == ["loved it", "hated it", "a masterpiece of boredom"]
    assert rows[0]["label"] == "positive" and rows[1]["label"] == "negative"
    out_csv = tmp_path / "out.csv"
    r = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(src), "--format", "csv",
            "--out", str(out_csv))
    assert r.returncode == 0 and len(out_csv.read_text().splitlines()) == 4


def test_edge_node_score_errors_are_clear(tmp_path, bundle_dir):
    src = tmp_path / "x.csv"
    src.write_text("body\nhello\n")
    r = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(src))
    assert r.returncode == 2 and "no column 'text'" in r.stderr
    r = run("-m", "edge_node", "score", "--model-dir", str(tmp_path), "hi")
    assert r.returncode == 2 and "manifest.json not found" in r.stderr


def test_models_evaluate_prints_the_metrics(bundle_dir, tmp_path):
    data = tmp_path / "mine.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([["I adore this phone", 1], ["Broken on arrival, refund please", 0],
                     ["Best purchase this year", 1], ["Terrible service and rude staff", 0]])
    r = run("-m", "models.evaluate", str(bundle_dir), "--data", str(data))
    assert r.returncode == 0, r.stderr
    for heading in ("accuracy", "balanced accuracy", "macro-F1", "calibration (ECE)", "confusion matrix"):
        assert heading in r.stdout
    r = run("-m", "models.evaluate", str(bundle_dir), "--data", str(data), "--json")
    assert json.loads(r.stdout)["accuracy"] == 1.0


def test_models_evaluate_rejects_a_file_without_labels(bundle_dir, tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("text\nhello\n")
    r = run("-m", "models.evaluate", str(bundle_dir), "--data", str(data))
    assert r.returncode == 2 and "missing column(s) label" in r.stderr


def test_generated_grpc_code_matches_the_protos(tmp_path):
    generated = generate(tmp_path)
    assert proto_files() and generated
    for path in generated:
        committed = ROOT / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is not committed; run `make protos`"
        assert committed.read_text() == path.read_text(), f"{committed} drifted; run `make protos`"


def test_control_plane_entry_point_runs():
    r = subprocess.run([str(Path(sys.executable).parent / "control-plane"), "version"], capture_output=True, text=True)
    assert r.returncode == 0 and "sentiedge.v1" in r.stdout
