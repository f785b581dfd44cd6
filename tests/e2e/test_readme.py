"""The README's quick start and its five requests, run as a newcomer would paste them, against
a control plane and an enrolled edge started the way `make run` starts them."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cluster import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)
DEV_KEY = "sentiedge-development-key-change-me"  # the Makefile's DEV_PSEUDONYM_KEY


def blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    body = text[text.index(f"## {section}"):]
    body = body[:body.index("\n## ", 3)] if "\n## " in body[3:] else body
    return re.findall(r"```sh\n(.*?)```", body, re.S)


def test_the_readme_quick_start_and_five_requests_run_as_written(spawn, bundle_dir, tmp_path):
    cp_proc, cp = spawn("control-plane", "serve", env={"CP_PSEUDONYM_KEY": DEV_KEY})
    data = Path(cp_proc.env["CP_DATA_DIR"])
    cli = [f"{BIN}/control-plane", "--target", cp, "--json"]
    env = {**os.environ, "CP_DATA_DIR": str(data)}
    enrolled = subprocess.run([*cli, "nodes", "--enroll", "edge-local"], capture_output=True, text=True, env=env,
                              timeout=60, check=True)
    token = json.loads(enrolled.stdout)["enrollment_token"]
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), "--node-id", "edge-local",
                    env={"EDGE_CONTROL_PLANE": cp, "EDGE_ENROLLMENT_TOKEN": token, "EDGE_PSEUDONYM_KEY": DEV_KEY})
    eventually(lambda: any(n["node_id"] == "edge-local" and n["state"] == "connected" for n in json.loads(
        subprocess.run([*cli, "nodes"], capture_output=True, text=True, env=env, timeout=60).stdout)["nodes"]),
        what="the enrolled edge to connect")

    def runnable(script: str) -> str:
        return (script.replace("localhost:8080", edge.removeprefix("http://"))
                .replace("var/control-plane/dev-app.json", str(data / "dev-app.json"))
                .replace(".venv/bin/", BIN + "/"))

    quick = blocks("Quick start")[1]
    sentiment = runnable(quick.split("\n\n")[0])
    out = subprocess.run(["bash", "-c", sentiment], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    results = json.loads(out.stdout)["results"]
    assert [r["label"] for r in results] == ["positive", "negative", "neutral"], out.stderr

    five = runnable(blocks("Personalization in five requests")[0])
    out = subprocess.run(["bash", "-c", five], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    answers = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(answers) == 5, (out.stdout, out.stderr)
    granted, events, ranked, withdrawn, erased = answers
    assert all(p["granted"] for p in granted["purposes"].values())
    assert events["accepted"] == 3 and events["texts_scored"] == 2
    assert ranked["source"] == "user" and ranked["items"][0]["id"] == "serum-2"
    assert "Garden" in ranked["items"][-1]["reason"] and ranked["items"][-1]["id"] == "spade-3"
    # The answers the README shows as comments are the ones a newcomer gets.
    shown = re.findall(r'"id":"([\w-]+)","rank":(\d+),"reason":"([^"]+)"',
                       blocks("Personalization in five requests")[0])
    assert shown and [(i["id"], str(i["rank"]), i["reason"]) for i in ranked["items"][:len(shown)]] == shown
    assert withdrawn["withdrawn"] == ["personalization"] and "profile" in withdrawn["erased"]
    assert erased["user_id"] == "ann" and erased["request_id"].startswith("req-")
