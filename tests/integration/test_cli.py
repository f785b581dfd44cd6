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


def test_models_evaluate_takes_neutral_rows_for_a_three_way_view(bundle_dir, tmp_path):
    data = tmp_path / "mine.csv"
    with data.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows([["I adore this phone", "positive"], ["Broken on arrival, refund please", "negative"],
                     ["where is my order?", "neutral"], ["The package arrived on Tuesday.", "neutral"]])
    r = run("-m", "models.evaluate", str(bundle_dir), "--data", str(data), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 2 and out["accuracy"] == 1.0  # the two-way view: the positive and negative rows
    three = out["three_way"]
    assert three["n"] == 4 and sum(map(sum, three["confusion"])) == 4 and sum(three["confusion"][1]) == 2
    r = run("-m", "models.evaluate", str(bundle_dir), "--data", str(data))
    assert r.returncode == 0 and "three-way" in r.stdout and "2 labelled neutral" in r.stdout
    data.write_text("text,label\nhello,maybe\n")
    r = run("-m", "models.evaluate", str(bundle_dir), "--data", str(data))
    assert r.returncode == 2 and "is not 1/0, positive/negative or neutral" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


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


def test_edge_node_score_file_keeps_every_input_column(bundle_dir, tmp_path):
    src = tmp_path / "tickets.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ticket_id", "body", "label", "channel"])
        w.writerows([["T-1", "love the new app, works great", "1", "app"], ["T-2", "it keeps crashing", "0", "chat"]])
    out = tmp_path / "scored.jsonl"
    r = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(src), "--column", "body",
            "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["ticket_id"], x["channel"], x["input_label"]) for x in rows] == [("T-1", "app", "1"),
                                                                               ("T-2", "chat", "0")]
    assert rows[0]["text"] == "love the new app, works great" and rows[0]["label"] in ("positive", "negative")
    out_csv = tmp_path / "scored.csv"
    r = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(src), "--column", "body",
            "--format", "csv", "--out", str(out_csv))
    assert r.returncode == 0, r.stderr
    with out_csv.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [t["ticket_id"] for t in table] == ["T-1", "T-2"] and table[1]["input_label"] == "0"
    assert {"text", "label", "score", "confidence", "stage"} <= set(table[0])


def _missing_help(parser, path=""):
    import argparse

    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            for name, sub in action.choices.items():
                missing += [] if name in helped else [f"{path} {name}".strip()]
                missing += _missing_help(sub, f"{path} {name}".strip())
        elif action.option_strings and not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path} {action.option_strings[-1]}".strip())
    return missing


def test_every_command_and_option_has_help():
    from control_plane.cli import _parser as control_plane
    from edge_node.cli import _parser as edge_node

    assert _missing_help(control_plane()) == []
    assert _missing_help(edge_node()) == []


def test_a_reader_that_leaves_early_gets_no_traceback(bundle_dir, tmp_path):
    """`control-plane audit | head`: the pipe closes before the output is written."""
    for args in ([str(Path(sys.executable).parent / "control-plane"), "certs", "init", "--dir", str(tmp_path / "ca")],
                 [sys.executable, "-m", "edge_node", "score", "--model-dir", str(bundle_dir), *["fine"] * 2000]):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        proc.stdout.close()  # the reader is gone before the command prints
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141 and "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_certs_issue_prints_the_variables_for_who_uses_the_certificate(tmp_path):
    cli = str(Path(sys.executable).parent / "control-plane")
    subprocess.run([cli, "certs", "init", "--dir", str(tmp_path)], check=True, capture_output=True)
    edge = subprocess.run([cli, "certs", "issue", "pop-ams", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert "EDGE_TLS_CERT=" in edge.stdout and "CP_CERT=" not in edge.stdout
    ops = subprocess.run([cli, "certs", "issue", "ops", "--operator", "--dir", str(tmp_path)], capture_output=True,
                         text=True)
    assert ops.returncode == 0 and "CP_CERT=" in ops.stdout and "CP_KEY=" in ops.stdout
    assert "EDGE_TLS" not in ops.stdout


def test_a_refused_connection_names_the_target_setting():
    cli = str(Path(sys.executable).parent / "control-plane")
    r = subprocess.run([cli, "--target", "127.0.0.1:9", "--token", "t", "nodes"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "UNAVAILABLE" in r.stderr
    assert "--target" in r.stderr and "CP_TARGET" in r.stderr and "Traceback" not in r.stderr


def test_edge_node_score_leaves_blank_texts_unscored_as_the_api_does(bundle_dir, tmp_path):
    src = tmp_path / "mixed.csv"
    src.write_text('text\nloved it\n"   "\nhated it\n')
    out = tmp_path / "out.jsonl"
    r = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(src), "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["label"], row.get("error")) for row in rows] == [("positive", None), (None, "empty_text"),
                                                                  ("negative", None)]
    table = run("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "", "fine")
    assert table.returncode == 0 and "(empty: not scored)" in table.stdout


def test_command_line_mistakes_get_one_line(bundle_dir, tmp_path):
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("text\ncafé awful\n".encode("latin-1"))
    cases = [
        (("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(latin)), "not UTF-8"),
        (("-m", "edge_node", "score", "--model-dir", str(bundle_dir), "--file", str(tmp_path / "none.csv")),
         "cannot read"),
        # (an operator token is given: a fresh checkout has none for the CLI to find)
        (("-m", "control_plane", "--token", "t", "models", "push", str(tmp_path / "nowhere")), "is not a directory"),
        (("-m", "control_plane", "--token", "t", "models", "push", str(tmp_path)), "not a bundle directory"),
        (("-m", "edge_node", "serve", "--model-dir", str(tmp_path / "typo"), "--data-dir", str(tmp_path / "e1")),
         "is not a model bundle"),
        (("-m", "edge_node", "serve", "--data-dir", str(tmp_path / "e2"), "--model-dir", str(bundle_dir),
          "--trusted-keys", "PRiY49RU/uGM35bibZwwHqMMJMJ34RiaD7LWW4USngI="), "not signed"),
    ]
    for args, words in cases:
        r = run(*args)
        assert r.returncode != 0 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_a_busy_port_stops_either_service_in_one_line(bundle_dir, tmp_path):
    import os
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for workers in ("1", "2"):
            r = run("-m", "edge_node", "serve", "--port", port, "--workers", workers, "--model-dir", str(bundle_dir),
                    "--data-dir", str(tmp_path / f"edge-{workers}"))
            assert r.returncode == 2 and f"127.0.0.1:{port}" in r.stderr.splitlines()[-1], r.stderr
        r = run("-m", "control_plane", "serve", "--port", port, env={**os.environ, "CP_DATA_DIR": str(tmp_path / "cp")})
        assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr.splitlines()[-1], r.stderr
        assert "add_port" not in r.stderr and "Failed to add port" not in r.stderr, r.stderr  # no raw gRPC line
        # ... and it wrote no credential nobody was told about (a generated operator token, dev app keys).
        assert not (tmp_path / "cp" / "admin.token").exists() and not (tmp_path / "cp" / "dev-app.json").exists()


def test_a_second_control_plane_on_the_same_data_directory_is_refused_in_one_line(tmp_path):
    import os
    import socket
    import time

    def free_port() -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return str(probe.getsockname()[1])

    env = {**os.environ, "CP_DATA_DIR": str(tmp_path / "cp")}
    port = free_port()
    first = subprocess.Popen([sys.executable, "-m", "control_plane", "serve", "--port", port], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", int(port))) != 0:  # serving: it holds the directory
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        tokens = (tmp_path / "cp" / "admin.token").read_text()
        r = run("-m", "control_plane", "serve", "--port", free_port(), env=env)
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines()[-1] == (
            f"control-plane: error: the data in {tmp_path / 'cp'} is in use by another control plane (one per data "
            "directory: CP_DATA_DIR / --data-dir picks another)"), r.stderr
        assert (tmp_path / "cp" / "admin.token").read_text() == tokens  # the refused one wrote nothing
    finally:
        first.terminate()
        assert first.wait(timeout=30) == 0


def test_operator_cli_takes_global_flags_anywhere_and_prints_integers_as_numbers(tmp_path):
    import os
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CP_DATA_DIR": str(tmp_path / "cp"), "CP_ADMIN_TOKENS": "ops:cli-token-123"}
    server = subprocess.Popen([sys.executable, "-m", "control_plane", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        def cli(*args):
            return run("-m", "control_plane", *args, "--target", f"127.0.0.1:{port}", "--token", "cli-token-123",
                       env=env)

        deadline = time.monotonic() + 60
        while (listed := cli("apps", "list", "--json")).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [a["name"] for a in json.loads(listed.stdout)["apps"]] == ["dev"], listed.stderr
        configured = cli("apps", "configure", "dev", "--origin", "http://localhost:9000", "--policy-version", "2026-12")
        assert configured.returncode == 0 and "http://localhost:9000" in configured.stdout, configured.stderr
        app = json.loads(cli("apps", "list", "--json").stdout)["apps"][0]
        assert app["origins"] == ["http://localhost:9000"] and app["policy_version"] == "2026-12"
        deleted = json.loads(cli("privacy", "delete", "ann", "--wait", "10", "--json").stdout)
        assert deleted["state"] == "completed" and isinstance(deleted["seq"], int)  # no node to wait for
        assert json.loads(cli("nodes", "--json").stdout).get("nodes", []) == []
        empty = run("-m", "control_plane", "--target", f"127.0.0.1:{port}", "--token", "cli-token-123", "cohorts",
                    env=env)
        assert "no merged cohort cells yet" in empty.stdout and "CP_COHORT_MIN_SIZE" in empty.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
