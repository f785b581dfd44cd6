"""Federated adaptation benchmark (not a test). ``make bench-adaptation`` (needs the ``train`` extra)

Proxies a customer's new domain honestly. The base bundle is built here and never saw the
new domain: its encoder is the pretrained all-MiniLM-L6-v2 (no sentiment fine-tuning; mean
pooling, int8), its head, fast stage and cascade are fitted on IMDB reviews only. The new
domain is Rotten Tomatoes: all its 8,530 snippets are spread over 3 real ``edge-node serve``
processes as users' reviews, 5% of the predictions are sampled at the edges
(``EDGE_LABEL_SAMPLE_RATE=0.05``) and labelled through ``POST /v1/labels``; a real control
plane runs ``models adapt``; the other 95% are scored.

Reported: base accuracy, adapted accuracy (federated, no noise), the same head trained
centrally on the same labels (the non-private upper bound: same algorithm, same steps, one
party holding every label) and the ratio of the gains (goal: ≥ 0.95); with noise on, the
accuracy at ε = 1, 4, 8 (three jobs each, a fresh control plane per job so each has its own
ledger); the bytes each edge sends and receives per round. Accuracy of a job's parameters is
computed on the held-out texts' features (the bundle's own arithmetic), and checked once
against the promoted candidate served by the edges.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from google.protobuf import json_format  # noqa: E402

from models.calibration import fit_logistic, fit_temperature  # noqa: E402
from models.cascade_fit import Margins, fit_cascade, negated  # noqa: E402
from models.data import load_corpus  # noqa: E402
from protos.sentiedge.v1 import sync_pb2  # noqa: E402
from sentiedge_core import adaptation, cascade  # noqa: E402
from sentiedge_core.bundle import CascadeSpec, Golden, Manifest, StageSpec, encode_manifest, sha256_file  # noqa: E402
from sentiedge_core.inference import SentimentModel  # noqa: E402
from sentiedge_core.stages import Head  # noqa: E402

TOKEN = "bench-adaptation-token"
KEY = "bench-adaptation-pseudonym-key"
NAME = "bench-imdb-only"
HEAD_TEXTS = 3000  # IMDB training reviews the base head is fitted on
VAL_TEXTS = 800  # IMDB validation reviews for the cascade's routes and calibration
EPSILONS = (1.0, 4.0, 8.0)
REPEATS = 3
ROUNDS = 3


# --- the base bundle: never saw Rotten Tomatoes -----------------------------------------------
def export_encoder(out: Path) -> Path:
    """all-MiniLM-L6-v2 as pretrained, mean-pooled (its sentence embedding), int8."""
    import torch
    from transformers import AutoModel

    from models.transformer_stage import base_model_dir, quantize

    encoder = AutoModel.from_pretrained(base_model_dir()).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    fp32 = out / "encoder.fp32.onnx"
    dummy = (torch.ones(2, 16, dtype=torch.int64), torch.ones(2, 16, dtype=torch.int64))
    torch.onnx.export(Pooled(encoder), dummy, str(fp32), input_names=["input_ids", "attention_mask"],
                      output_names=["pooled"], opset_version=17, dynamo=False,
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                    "pooled": {0: "batch"}})
    quantize(fp32, out / "transformer.onnx")
    fp32.unlink()
    shutil.copy(base_model_dir() / "tokenizer.json", out / "transformer-tokenizer.json")
    return out / "transformer.onnx"


def fit_head(pooled: np.ndarray, y: np.ndarray) -> Head:
    """Logistic regression on the pooled outputs (models.calibration.fit_logistic), as a 2-row head."""
    w = np.asarray(fit_logistic(pooled, y))
    return Head(weights=[(-w[:-1] / 2).tolist(), (w[:-1] / 2).tolist()], bias=[-w[-1] / 2, w[-1] / 2])


def build_base(work: Path, threads: int) -> Path:
    from models import fast_stage
    from sentiedge_core.stages import FastStage, TransformerStage

    out = work / "base-bundle"
    if (out / "manifest.json").exists():
        return out
    staging = work / "base-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    corpus = load_corpus()
    rng = np.random.default_rng(5)
    train, validation = corpus.train, corpus.validation
    imdb_train = [(t, y) for t, y, s in zip(train.texts, train.y, train.sources, strict=False) if s == "imdb"]
    imdb_val = [(t, y) for t, y, s in zip(validation.texts, validation.y, validation.sources, strict=False)
                if s == "imdb"]
    print(f"base: fast stage on {len(imdb_train)} IMDB reviews", flush=True)
    recipe = fast_stage.FAST_RECIPE
    fast_stage.train_tokenizer([t for t, _ in imdb_train], staging / "fast-tokenizer.json", recipe["vocab_size"])
    emb, w, b, _ = fast_stage.train([t for t, _ in imdb_train], [y for _, y in imdb_train],
                                    [t for t, _ in imdb_val], [y for _, y in imdb_val], staging / "fast-tokenizer.json")
    fast_stage.export_onnx(emb, w, b, staging / "fast.fp32.onnx")
    fast_stage.quantize(staging / "fast.fp32.onnx", staging / "fast.onnx")
    (staging / "fast.fp32.onnx").unlink()
    print("base: pretrained MiniLM encoder, mean pooled, int8", flush=True)
    export_encoder(staging)
    probe = Head(weights=[[0.0] * 384, [0.0] * 384], bias=[0.0, 0.0])
    transformer = TransformerStage(staging / "transformer.onnx", staging / "transformer-tokenizer.json", max_len=128,
                                   max_windows=3, threads=threads, head=probe)
    head_rows = [imdb_train[i] for i in rng.permutation(len(imdb_train))[:HEAD_TEXTS]]
    print(f"base: head on {len(head_rows)} IMDB reviews' pooled outputs", flush=True)
    pooled = np.concatenate([transformer.pooled([t]) for t, _ in head_rows])
    head = fit_head(pooled, np.asarray([y for _, y in head_rows]))
    (staging / "transformer-head.json").write_text(json.dumps({"weights": head.weights, "bias": head.bias}))
    transformer = TransformerStage(staging / "transformer.onnx", staging / "transformer-tokenizer.json", max_len=128,
                                   max_windows=3, threads=threads, head=head)
    fast = FastStage(staging / "fast.onnx", staging / "fast-tokenizer.json", buckets=recipe["buckets"],
                     max_tokens=recipe["max_tokens"], threads=threads)
    val_rows = [imdb_val[i] for i in rng.permutation(len(imdb_val))[:VAL_TEXTS]]
    texts, y = [t for t, _ in val_rows], np.asarray([y for _, y in val_rows])
    fm, tokens = fast.margins(texts)
    tm = np.asarray([transformer.margins([t])[0] for t in texts])
    val = Margins(fm.astype(float), tokens, tm.astype(float), y, np.asarray(["imdb"] * len(y)), negated(texts))
    spec, _ = fit_cascade(val, 126)
    p, _ = cascade.combine(val.fast, val.transformer, val.tokens, spec, val.negated)
    confident = [i for i in np.argsort(-np.abs(p - 0.5)) if (p[i] >= 0.5) == bool(y[i]) and len(texts[i]) < 400][:6]
    manifest = Manifest(
        name=NAME, version="1.0.0", labels=["negative", "positive"], files={}, cascade=spec,
        stages=[StageSpec(name="fast", kind="embedding_bag", model="fast.onnx", tokenizer="fast-tokenizer.json",
                          buckets=recipe["buckets"], max_tokens=recipe["max_tokens"]),
                StageSpec(name="transformer", kind="transformer", model="transformer.onnx",
                          tokenizer="transformer-tokenizer.json", temperature=fit_temperature(tm, y), max_len=128,
                          max_windows=3, head="transformer-head.json")],
        golden=[Golden(text=texts[i], label="positive" if y[i] else "negative") for i in confident],
        license="benchmark only", created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        provenance={"purpose": "bench/adaptation.py base: never saw Rotten Tomatoes",
                    "encoder": "all-MiniLM-L6-v2 as pretrained (no sentiment fine-tuning), mean pooled, int8",
                    "head": f"logistic regression on {HEAD_TEXTS} IMDB training reviews",
                    "fast_stage": "trained on IMDB training reviews only",
                    "cascade": f"fitted on {VAL_TEXTS} IMDB validation reviews"})
    manifest.files = {n: sha256_file(staging / n) for n in sorted(
        ["fast.onnx", "fast-tokenizer.json", "transformer.onnx", "transformer-tokenizer.json",
         "transformer-head.json"])}
    (staging / "manifest.json").write_bytes(encode_manifest(manifest))
    SentimentModel(staging, threads=threads)  # digests, stages, golden examples
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


# --- processes --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(base: str, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait(check, timeout: float = 180, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise TimeoutError(what)


class Cluster:
    def __init__(self, work: Path, bundle: Path, edges: int, label_share: float) -> None:
        self.work, self.bundle = work, bundle
        self.cp_port = free_port()
        self.cp = f"127.0.0.1:{self.cp_port}"
        self.cp_proc: subprocess.Popen | None = None
        self.cp_dir: Path | None = None
        self.exe = Path(sys.executable).parent
        self.edges, self.procs = [], []
        self.start_cp("cp-0")
        for i in range(edges):
            port = free_port()
            self.procs.append(subprocess.Popen(
                [str(self.exe / "edge-node"), "serve", "--model-dir", str(bundle)],
                env=os.environ | {"EDGE_PORT": str(port), "EDGE_DATA_DIR": str(work / f"edge-{i}"),
                                  "EDGE_CONTROL_PLANE": self.cp, "EDGE_NODE_ID": f"edge-{i}", "EDGE_REGION": "eu",
                                  "EDGE_PSEUDONYM_KEY": KEY, "EDGE_SYNC_BACKOFF_MAX_S": "1", "EDGE_WORKERS": "1",
                                  "EDGE_LABEL_SAMPLE_RATE": str(label_share), "EDGE_ADAPT_MIN_LABELS": "20",
                                  "EDGE_RATE_LIMIT_PER_ADDRESS": "0", "EDGE_RATE_LIMIT_PER_KEY": "0",
                                  "EDGE_LANGUAGES": "*", "EDGE_LOG_LEVEL": "warning",
                                  "EDGE_SYNC_AUDIT_LOG": str(work / f"upstream-edge-{i}.jsonl")},
                stdout=(work / f"edge-{i}.log").open("wb"), stderr=subprocess.STDOUT))
            self.edges.append(f"http://127.0.0.1:{port}")
        wait(lambda: all(self.ready(e).get("sync") == "connected" for e in self.edges), what="edges connected")
        app = json.loads((self.cp_dir / "dev-app.json").read_text())["apps"][0]
        self.headers = {"x-client-key": app["client_keys"][0],
                        "authorization": f"Bearer {app['server_keys'][0]['key']}"}

    def ready(self, edge: str) -> dict:
        try:
            return http(edge, "GET", "/readyz", timeout=2)[1]
        except OSError:
            return {}

    def start_cp(self, name: str) -> None:
        """A fresh control plane (its own database and ledger) on the same address."""
        if self.cp_proc is not None:
            self.cp_proc.terminate()
            self.cp_proc.wait(30)
        self.cp_dir = self.work / name
        shutil.rmtree(self.cp_dir, ignore_errors=True)
        self.cp_proc = subprocess.Popen(
            [str(self.exe / "control-plane"), "serve"],
            env=os.environ | {"CP_PORT": str(self.cp_port), "CP_HOST": "127.0.0.1", "CP_DATA_DIR": str(self.cp_dir),
                              "CP_ADMIN_TOKENS": f"bench:{TOKEN}", "CP_PSEUDONYM_KEY": KEY,
                              "CP_HEARTBEAT_INTERVAL_S": "0.5", "CP_ADAPT_MIN_LABELS": "20", "CP_LOG_LEVEL": "warning",
                              "CP_ALLOW_ANONYMOUS_NODES": "true"},  # loopback benchmark edges, no credentials
            stdout=(self.work / f"{name}.log").open("wb"), stderr=subprocess.STDOUT)
        wait(lambda: (self.cp_dir / "dev-app.json").exists(), what="control plane up")
        if self.edges:
            wait(lambda: all(self.ready(e).get("sync") == "connected" for e in self.edges), what="edges reconnected")
        self.operator("models", "push", str(self.bundle))

    def operator(self, *args: str) -> dict:
        out = subprocess.run([str(self.exe / "control-plane"), "--target", self.cp, "--token", TOKEN, "--json", *args],
                             capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"control-plane {' '.join(args)}: {out.stderr.strip()}")
        return json.loads(out.stdout)

    def theta(self, job: str) -> np.ndarray:
        """A job's final parameters, from the control plane's database (a failed candidate included)."""
        with sqlite3.connect(self.cp_dir / "control-plane.db") as db:
            body = db.execute("SELECT body FROM adaptation_jobs WHERE job_id = ?", (job,)).fetchone()[0]
        return np.asarray(json.loads(body)["theta"])

    def close(self) -> None:
        for p in [*self.procs, self.cp_proc]:
            p.terminate()
        for p in [*self.procs, self.cp_proc]:
            p.wait(30)


# --- the measurement --------------------------------------------------------------------------
def spread(cluster: Cluster, texts: list[str], y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Every text as a user's review at one of the edges; label each sampled prediction.
    Returns the base's predictions, which texts were labelled, and the labels sent."""
    predicted = np.zeros(len(texts), bool)
    labelled = np.zeros(len(texts), bool)
    per_user = 80
    for start in range(0, len(texts), per_user):
        edge = cluster.edges[(start // per_user) % len(cluster.edges)]
        user = f"u{start // per_user}"
        status, body = http(edge, "PUT", f"/v1/users/{user}/consent", {"purposes": {
            "sentiment": True, "personalization": True}, "policy_version": "v1"}, cluster.headers)
        assert status == 200, (status, body)
        for chunk in range(start, min(start + per_user, len(texts)), 40):
            idx = list(range(chunk, min(chunk + 40, start + per_user, len(texts))))
            status, report = http(edge, "POST", f"/v1/users/{user}/events", {"events": [
                {"type": "review", "item_id": f"i{i}", "category": "Movies", "text": texts[i]} for i in idx]},
                cluster.headers)
            assert status == 200, report
            for i, result in zip(idx, report["results"], strict=False):
                sentiment = result["sentiment"]
                predicted[i] = sentiment["label"] == "positive"
                if sentiment.get("sample_id"):
                    truth = "positive" if y[i] else "negative"
                    assert http(edge, "POST", "/v1/labels", {"sample_id": sentiment["sample_id"], "label": truth},
                                cluster.headers)[0] == 200
                    labelled[i] = True
        print(f"\r  spread {min(start + per_user, len(texts))}/{len(texts)} texts, {labelled.sum()} labelled",
              end="", flush=True)
    print()
    return predicted, labelled, int(labelled.sum())


def features(model: SentimentModel, texts: list[str], cache: Path) -> dict:
    if cache.exists():
        return dict(np.load(cache))
    verdicts = model.fast(texts)
    pooled = np.concatenate([model.transformer_stage.pooled([t]) for t in texts])
    out = {"pooled": pooled, "fast": np.asarray([v.margin for v in verdicts]),
           "tokens": np.asarray([v.tokens for v in verdicts]), "escalated": np.asarray([v.escalate for v in verdicts])}
    np.savez(cache, **out)
    return out


def accuracy(theta: np.ndarray, model: SentimentModel, f: dict, y: np.ndarray) -> float:
    head, spec = adaptation.apply(model.transformer_stage.head, model.manifest.cascade, theta)
    w = np.asarray(head.weights)
    tm = f["pooled"] @ (w[1] - w[0]) + (head.bias[1] - head.bias[0])
    p = np.where(f["escalated"], cascade.stacked(f["fast"], tm, f["tokens"], spec),
                 cascade.route_fast_probability(f["fast"], f["tokens"], spec))
    return float(((p >= 0.5) == y).mean())


def stage_accuracy(theta: np.ndarray, f: dict, y: np.ndarray, dimension: int) -> float:
    """The transformer stage on its own (every text through the head), as a second view."""
    direction, offset, _, _ = adaptation.split(theta, dimension)
    return float((((f["pooled"] @ direction + offset) >= 0) == y).mean())


def central(theta0: np.ndarray, f: dict, y: np.ndarray, spec: CascadeSpec, rounds: int, steps: int,
            l2: float) -> np.ndarray:
    data = adaptation.Examples(f["pooled"], f["fast"], f["tokens"], f["escalated"], y.astype(float))
    theta = theta0.copy()
    for _ in range(rounds):
        theta = theta + adaptation.local_update(theta, data, spec, steps=steps, l2=l2)
    return theta


def replay(model: SentimentModel, f: dict, y: np.ndarray, edges: int, share: float, draws: int, steps: int,
           l2: float, clip: float) -> dict:
    """The same arithmetic as the real run, over more draws of which texts get labelled (one run's
    gains are a few dozen texts, so one draw's ratio is noisy): federated (per edge: local update,
    clip, then the count-weighted mean) against central, on the features."""
    spec = model.manifest.cascade
    theta0 = adaptation.initial(model.transformer_stage.head, spec)
    gains = []
    for seed in range(draws):
        lab = np.random.default_rng(100 + seed).random(len(y)) < share
        held = {k: v[~lab] for k, v in f.items()}
        base = accuracy(theta0, model, held, y[~lab])
        parts = [np.flatnonzero(lab)[i::edges] for i in range(edges)]
        theta = theta0.copy()
        for _ in range(ROUNDS):
            updates = []
            for part in parts:
                data = adaptation.Examples(f["pooled"][part], f["fast"][part], f["tokens"][part], f["escalated"][part],
                                           y[part].astype(float))
                updates.append((adaptation.clip(adaptation.local_update(theta, data, spec, steps=steps, l2=l2), clip),
                                len(part)))
            theta = theta + adaptation.fedavg(updates)
        central_theta = central(theta0, {k: v[lab] for k, v in f.items()}, y[lab], spec, ROUNDS, steps, l2)
        gains.append((accuracy(theta, model, held, y[~lab]) - base,
                      accuracy(central_theta, model, held, y[~lab]) - base))
    g = np.asarray(gains)
    return {"draws": draws, "federated_gain_mean": round(float(g[:, 0].mean()), 4),
            "central_gain_mean": round(float(g[:, 1].mean()), 4),
            "gain_ratio_of_means": round(float(g[:, 0].mean() / g[:, 1].mean()), 3) if g[:, 1].mean() else None,
            "federated_gains": g[:, 0].round(4).tolist(), "central_gains": g[:, 1].round(4).tolist()}


def wire_bytes(work: Path, edges: int, job: str) -> tuple[float, int]:
    """Mean bytes an edge sent per round (AdaptationUpdate) and received (AdaptationRound)."""
    sizes = []
    for i in range(edges):
        for line in (work / f"upstream-edge-{i}.jsonl").read_text().splitlines():
            message = json.loads(line)
            if "adaptation" in message and message["adaptation"].get("job") == job:
                sizes.append(json_format.ParseDict(message, sync_pb2.EdgeMessage()).ByteSize())
    return (float(np.mean(sizes)) if sizes else 0.0), len(sizes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "build" / "bench-adaptation")
    parser.add_argument("--edges", type=int, default=3)
    parser.add_argument("--label-share", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=REPEATS, help="noisy jobs per epsilon")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    base = build_base(work, args.threads)
    model = SentimentModel(base, threads=args.threads)
    corpus = load_corpus()
    rt = [(t, y) for split in (corpus.train, corpus.validation, corpus.test)
          for t, y, s in zip(split.texts, split.y, split.sources, strict=False) if s == "rotten_tomatoes"]
    order = np.random.default_rng(11).permutation(len(rt))
    texts, y = [rt[i][0] for i in order], np.asarray([rt[i][1] for i in order])
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    cluster = Cluster(run, base, args.edges, args.label_share)
    results: dict = {"edges": args.edges, "new_domain": f"Rotten Tomatoes, {len(texts)} snippets",
                     "base": "pretrained all-MiniLM-L6-v2 (mean pooled) + head, "
                             "fast stage and cascade fitted on IMDB only"}
    try:
        print(f"spreading {len(texts)} Rotten Tomatoes snippets over {args.edges} edges "
              f"(sampling {args.label_share:.0%} for labels)", flush=True)
        predicted, labelled, n_labels = spread(cluster, texts, y)
        held = ~labelled
        results |= {"labels": n_labels, "held_out": int(held.sum()),
                    "base_accuracy_served": round(float((predicted[held] == y[held]).mean()), 4)}
        print("features of the held-out and labelled texts (the base bundle, as served)", flush=True)
        f_all = features(model, texts, work / f"features-{len(texts)}.npz")
        f_held = {k: v[held] for k, v in f_all.items()}
        f_lab = {k: v[labelled] for k, v in f_all.items()}
        theta0 = adaptation.initial(model.transformer_stage.head, model.manifest.cascade)
        base_acc = accuracy(theta0, model, f_held, y[held])

        started = time.monotonic()
        job = cluster.operator("models", "adapt", NAME, "1.0.0", "--rounds", str(ROUNDS), "--min-labels", "20",
                               "--min-edges", str(args.edges), "--round-timeout", "300")
        fed_seconds = time.monotonic() - started
        theta_fed = cluster.theta(job["job"])
        fed_acc = accuracy(theta_fed, model, f_held, y[held])
        steps, l2 = 5, 1.0  # the control plane's defaults (control_plane/adaptation.py Defaults)
        theta_central = central(theta0, f_lab, y[labelled], model.manifest.cascade, ROUNDS, steps, l2)
        central_acc = accuracy(theta_central, model, f_held, y[held])
        sent, count = wire_bytes(run, args.edges, job["job"])
        received = sync_pb2.ControlMessage(adaptation=adaptation.round_to_proto(adaptation.Round(
            job=job["job"], round=0, rounds=ROUNDS, name=NAME, version="1.0.0", manifest_sha="0" * 64,
            dimension=model.transformer_stage.head.dimension, theta=theta0.tolist(), steps=steps, regularization=l2,
            clip=2.0, noise_multiplier=0.0, min_labels=20))).ByteSize()
        results |= {"base_accuracy": round(base_acc, 4), "federated_accuracy": round(fed_acc, 4),
                    "central_accuracy": round(central_acc, 4),
                    "gain_ratio": round((fed_acc - base_acc) / (central_acc - base_acc), 3)
                    if central_acc != base_acc else None,
                    "transformer_stage_alone": {
                        "base": round(stage_accuracy(theta0, f_held, y[held], len(theta0) - 7), 4),
                        "federated": round(stage_accuracy(theta_fed, f_held, y[held], len(theta0) - 7), 4),
                        "central": round(stage_accuracy(theta_central, f_held, y[held], len(theta0) - 7), 4)},
                    "escalated_share_held_out": round(float(f_held["escalated"].mean()), 4),
                    "job_state": job["state"], "candidate": job.get("candidate", ""), "job_error": job.get("error", ""),
                    "adapt_seconds": round(fed_seconds, 1),
                    "bytes_sent_per_edge_per_round": round(sent), "updates_seen": count,
                    "bytes_received_per_edge_per_round": received}
        results["replay"] = replay(model, f_all, y, args.edges, args.label_share, 6, steps, l2, 2.0)
        print(json.dumps(results, indent=1), flush=True)

        if job["state"] == "done":  # the candidate, served: the features' arithmetic is the bundle's
            name = NAME
            cluster.operator("models", "rollout", name, job["candidate"])
            wait(lambda: all(cluster.ready(e).get("version") == job["candidate"] for e in cluster.edges),
                 what="candidate everywhere")
            check = np.flatnonzero(held)[:400]
            right = 0
            for start in range(0, len(check), 32):
                chunk = check[start:start + 32]
                _, body = http(cluster.edges[0], "POST", "/v1/sentiment", {"texts": [texts[i] for i in chunk]},
                               cluster.headers)
                right += sum((r["label"] == "positive") == bool(y[i])
                             for r, i in zip(body["results"], chunk, strict=False))
            sub = {k: v[check] for k, v in f_all.items()}
            results["served_check"] = {"texts": len(check), "served_accuracy": round(right / len(check), 4),
                                       "computed_accuracy": round(accuracy(theta_fed, model, sub, y[check]), 4)}
            cluster.operator("models", "rollback", name)  # back to each edge's bundled base for the noisy jobs
            wait(lambda: all(cluster.ready(e).get("version") == "1.0.0" for e in cluster.edges), what="base again")

        noisy = {}
        for epsilon in EPSILONS:
            accs, fails = [], 0
            for r in range(args.repeats):
                cluster.start_cp(f"cp-eps{epsilon:g}-{r}")
                wait(lambda: all(cluster.ready(e).get("version") == "1.0.0" for e in cluster.edges),
                     what="edges back on the base (their bundled model)")
                j = cluster.operator("models", "adapt", NAME, "1.0.0", "--rounds", str(ROUNDS), "--min-labels", "20",
                                     "--min-edges", str(args.edges), "--round-timeout", "300",
                                     "--epsilon", str(epsilon))
                accs.append(accuracy(cluster.theta(j["job"]), model, f_held, y[held]))
                fails += j["state"] != "done"
            noisy[f"{epsilon:g}"] = {"mean_accuracy": round(float(np.mean(accs)), 4),
                                     "sd": round(float(np.std(accs)), 4), "jobs": len(accs),
                                     "candidates_refused_by_golden_check": fails,
                                     "noise_multiplier": round(adaptation.sigma_for(epsilon, ROUNDS, 1e-5), 3)}
            print(f"epsilon {epsilon:g}: {noisy[f'{epsilon:g}']}", flush=True)
        results["noisy"] = noisy
    finally:
        cluster.close()
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
