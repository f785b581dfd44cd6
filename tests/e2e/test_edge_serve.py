import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.http import call

pytestmark = pytest.mark.e2e


def post(base, path, body):
    return call(base, "POST", path, body)


def test_edge_serves_the_bundled_model_to_concurrent_clients_and_stops_on_sigterm(spawn, bundle_dir, model):
    proc, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir))
    distinct = ["I love this place, the staff are wonderful!",
                "The food was cold and the waiter was rude. Never again.",
                "An uneven film with a few good scenes.", "Refund took a month and nobody answered.",
                "Great value, would buy again.", "Not bad, not great.", "It broke after a day.",
                " ".join(["A long review of a long film that goes on."] * 60 + ["Loved it."])]
    texts = distinct * 8

    with ThreadPoolExecutor(32) as pool:
        replies = list(pool.map(lambda t: post(base, "/v1/sentiment", {"texts": [t]}), texts))
    assert all(status == 200 for status, _ in replies)
    served = [body["results"][0] for _, body in replies]
    # 64 concurrent callers, micro-batched across both stages: each gets exactly the answer
    # the engine gives its own text alone.
    expected = model.score(distinct) * 8
    assert [(r["label"], r["stage"]) for r in served] == [(e.label, e.stage) for e in expected]
    assert all(abs(r["score"] - e.score) < 1e-5 for r, e in zip(served, expected, strict=False))
    assert served[0]["label"] == "positive" and served[1]["label"] == "negative"

    status, body = post(base, "/v1/sentiment", {"texts": ["x" * 30_000]})
    assert status == 413 and body["field"] == "texts[0]"

    assert proc.terminate() == 0
    assert "Application shutdown complete" in proc.tail()


def test_edge_refuses_to_start_with_a_corrupt_bundle(spawn, bundle_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    (broken / "transformer.onnx").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="transformer.onnx has sha256"):
        spawn("edge-node", "serve", "--model-dir", str(broken))


def test_metrics_and_health_can_listen_apart_from_the_public_api(spawn, bundle_dir):
    from tests.e2e.conftest import free_port

    admin_port = free_port()
    admin = f"http://127.0.0.1:{admin_port}"
    proc, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), "--admin-port", str(admin_port),
                       health_url=admin + "/readyz")
    assert post(base, "/v1/sentiment", {"texts": ["Great."]})[0] == 200
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(admin + "/metrics") as r:
        text = r.read().decode()
    assert 'route="/v1/sentiment"' in text and "sentiedge_model_info" in text
    with urllib.request.urlopen(admin + "/readyz") as r:
        assert r.status == 200
    for path in ("/metrics", "/healthz", "/readyz"):  # the public port serves the API only
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + path)
        assert err.value.code == 404, path
    assert proc.terminate() == 0


def test_a_second_edge_on_the_same_data_dir_says_so_in_one_line(spawn, bundle_dir):
    """`make run-edge` while an edge runs: one clear line, no traceback, and the first keeps serving."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    proc, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir))
    from tests.e2e.conftest import free_port

    second = subprocess.run([str(Path(sys.executable).parent / "edge-node"), "serve", "--port", str(free_port())],
                            env=os.environ | {"EDGE_DATA_DIR": proc.env["EDGE_DATA_DIR"]},
                            capture_output=True, text=True, timeout=120)
    lines = (second.stdout + second.stderr).strip().splitlines()
    assert second.returncode == 2 and "in use by another process" in lines[-1], lines
    assert not any("Traceback" in line for line in lines) and len(lines) <= 2, lines
    assert call(base, "GET", "/readyz")[0] == 200


def test_one_log_format_and_no_line_repeated_per_request_or_per_worker(spawn, bundle_dir):
    proc, base = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env={"EDGE_WORKERS": "2"})
    for _ in range(20):
        assert post(base, "/v1/sentiment", {"texts": ["Fine."]})[0] == 200
    assert proc.terminate() == 0
    lines = [line for line in proc.log_path.read_text().splitlines() if line.strip()]
    stamped = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+")
    assert all(stamped.match(line) for line in lines), [line for line in lines if not stamped.match(line)][:5]
    assert sum("no EDGE_APPS_FILE" in line for line in lines) == 1  # said once per node, not once per worker
    assert sum("learned segments" in line for line in lines) == 0
