"""Operator commands for the model-quality loop: adapt, adaptations, pull, promote, quality.

``cli.py`` joins them to :data:`control_plane.cli_commands.COMMANDS` (same table, same rendering).
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
from pathlib import Path

from control_plane.cli_commands import Command, Rpc, _args, _pb, a, ref, rows, when

NAME = a("name")


def _eps(value: float) -> str:
    return "inf (no noise)" if math.isinf(value) or value > 1e300 else f"{value:.3g}"


async def _adapt(args, rpc: Rpc):
    pb = _pb()
    job = await rpc.models.Adapt(pb.AdaptRequest(
        name=args.name, version=args.version, rounds=args.rounds, steps=args.steps, regularization=args.regularization,
        clip=args.clip, noise_multiplier=args.noise_multiplier, epsilon=args.epsilon, min_labels=args.min_labels,
        min_edges=args.min_edges, round_timeout_s=args.round_timeout), metadata=rpc.metadata)
    print(f"adaptation {job.job} of {args.name} {args.version}: {job.rounds} rounds, clip {job.clip:g}, "
          f"noise multiplier {job.noise_multiplier:.3g} (epsilon {_eps(job.epsilon)} at delta {job.delta:g})",
          file=sys.stderr)
    if args.no_wait:
        return job
    shown = 0
    print(f"round 1/{job.rounds}: waiting for the edges' updates", file=sys.stderr)
    try:
        while job.state in ("running", "building"):
            await asyncio.sleep(1.0)
            reply = await rpc.models.Adaptations(pb.ListAdaptationsRequest(job=job.job), metadata=rpc.metadata)
            job = reply.jobs[0]
            for done in job.history[shown:]:
                print(f"round {done.round}/{job.rounds} closed: {done.edges} edge(s), {done.labels} labels, "
                      f"update norm {done.update_norm:.3g}" + (f", {done.declined} declined" if done.declined else ""),
                      file=sys.stderr)
            shown = len(job.history)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"stopped watching; the job goes on (control-plane models adaptations --job {job.job})",
              file=sys.stderr)
        raise
    return job


def _job_text(args, d: dict) -> str:
    text = (f"{d['job']}  {ref(d['model'])}  {d['state']}  round {d['round']}/{d['rounds']}  "
            f"epsilon {_eps(float(d['epsilon']))}")
    if d.get("error"):
        text += f"\nerror: {d['error']}"
    if d.get("candidate"):
        name = d["model"]["name"]
        text += f"\ncandidate: {name} {d['candidate']}"
        if d.get("awaiting_signature") or d["state"] == "done":
            sign = "sign it (models pull, models sign, models push), then " if d.get("awaiting_signature") else ""
            text += (f"\nnext: {sign}"
                     f"canary it: control-plane models rollout {name} {d['candidate']} --percent 10; "
                     f"then models quality {name}")
    return text


def _adaptations_table(args, d: dict) -> str:
    jobs = rows(["job", "model", "state", "round", "edges/labels (last)", "epsilon", "candidate", "started"],
                [[j["job"], ref(j["model"]), j["state"] + (" (unsigned)" if j.get("awaiting_signature") else ""),
                  f"{j['round']}/{j['rounds']}",
                  f"{j['history'][-1]['edges']}/{j['history'][-1]['labels']}" if j.get("history") else "-",
                  _eps(float(j["epsilon"])), j.get("candidate") or "-", when(j["created_at"])]
                 for j in d.get("jobs", [])])
    errors = [f"{j['job']}: {j['error']}" for j in d.get("jobs", []) if j.get("error")]
    ledger = rows(["lineage", "noisy rounds", "rounds without noise", "epsilon", "delta"],
                  [[r["lineage"], r["noisy_rounds"], r["noiseless_rounds"], _eps(float(r["epsilon"])),
                    f"{r['delta']:g}"]
                   for r in d.get("ledger", [])])
    return "\n".join([jobs, *errors, "", "privacy ledger (per model lineage):", ledger])


async def _pull_bundle(args, rpc: Rpc):
    from protos.sentiedge.v1 import common_pb2
    from sentiedge_core.bundle import unpack, verify

    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"control-plane: {out} exists and is not empty")
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "bundle.tar"
        with tar.open("wb") as fh:
            async for chunk in rpc.models.Pull(_pb().PullRequest(name=args.name, version=args.version),
                                               metadata=rpc.metadata):
                fh.write(chunk.data)
                size += len(chunk.data)
        out.mkdir(parents=True, exist_ok=True)  # only once the whole bundle arrived
        unpack(tar, out)
    manifest = verify(out)
    return _pb().ModelInfo(model=common_pb2.ModelRef(name=manifest.name, version=manifest.version),
                           bundle_size=size)


async def _promote(args, rpc: Rpc):
    pb = _pb()
    status = await rpc.models.Status(pb.ModelStatusRequest(name=args.name), metadata=rpc.metadata)
    if not status.current.version:
        raise SystemExit(f"control-plane: {args.name} has no rollout of a pushed version to promote")
    request = pb.RolloutRequest(name=args.name, version=status.current.version)
    request.percent = 100
    return await rpc.models.Rollout(request, metadata=rpc.metadata)


def _quality_table(args, d: dict) -> str:
    table = rows(["model", "scope", "labelled", "disagreements", "rate", "95% interval"],
                 [[r["model"], r["scope"], r["labelled"], r["disagreements"], f"{r['disagreement_rate']:.1%}",
                   f"{r['low']:.1%}..{r['high']:.1%}"] for r in d.get("rows", [])])
    lines = [table]
    for c in d.get("comparisons", []):
        if c["verdict"] == "too_few_labels":
            lines.append(f"\n{c['name']}: {c['candidate']} vs {c['baseline']}: {c['candidate_labelled']} and "
                         f"{c['baseline_labelled']} labels so far; a comparison needs 30 on each side")
            continue
        lines.append(
            f"\n{c['name']}: {c['candidate']} vs {c['baseline']}: disagreement {c['candidate_rate']:.1%} "
            f"({c['candidate_labelled']} labels) vs {c['baseline_rate']:.1%} ({c['baseline_labelled']}), "
            f"difference {c['difference']:+.1%} (95% {c['low']:+.1%}..{c['high']:+.1%}), p = {c['p_value']:.3g}: "
            f"{c['verdict'].replace('_', ' ')}")
        if c["verdict"] == "better":
            lines.append(f"  promote it: control-plane models promote {c['name']}")
        elif c["verdict"] == "worse":
            lines.append(f"  roll it back: control-plane models rollback {c['name']}")
    return "\n".join(lines)


def _promoted(args, d: dict) -> str:
    previous = ref(d["previous"]) if d.get("previous", {}).get("version") else "each node's bundled model"
    return f"{args.name}: {ref(d['current'])} on every node (models rollback returns to {previous})"


COMMANDS: dict[str, Command] = {
    "models quality": Command(
        "disagreement of sampled, labelled predictions per version, with 95%% intervals, and the rollout's current "
        "version against its previous one", _args(a("name", nargs="?", default="", help="only this model")),
        lambda args, rpc: rpc.models.Quality(_pb().QualityRequest(name=args.name), metadata=rpc.metadata),
        _quality_table),
    "models adapt": Command(
        "federated head adaptation of a pushed version on the edges' labelled samples (waits, showing progress)",
        _args(NAME, a("version"),
              a("--rounds", type=int, default=3, help="federated rounds (default 3)"),
              a("--epsilon", type=float, default=0.0,
                help="add noise so that the lineage's total privacy cost stays within this epsilon"),
              a("--noise-multiplier", type=float, default=0.0,
                help="Gaussian noise std as a multiple of --clip, drawn on each edge (default 0: no noise, no DP)"),
              a("--clip", type=float, default=0.0, help="L2 bound of each edge's update (default 2)"),
              a("--steps", type=int, default=0, help="local Newton steps per round (default 5)"),
              a("--regularization", type=float, default=0.0,
                help="L2 pull towards each round's starting parameters: more moves less (default 1)"),
              a("--min-labels", type=int, default=0, help="labels an edge needs to contribute (default CP setting)"),
              a("--min-edges", type=int, default=0, help="edges a round needs (default 1)"),
              a("--round-timeout", type=float, default=0.0, help="seconds a round waits for edges (default CP "
                                                                 "setting)"),
              a("--no-wait", action="store_true", help="start the job and return")),
        _adapt, _job_text),
    "models adaptations": Command(
        "adaptation jobs and the privacy ledger",
        _args(a("name", nargs="?", default=""), a("--job", default="", help="one job")),
        lambda args, rpc: rpc.models.Adaptations(_pb().ListAdaptationsRequest(name=args.name, job=args.job),
                                                 metadata=rpc.metadata),
        _adaptations_table),
    "models pull": Command(
        "download a stored bundle into a directory (e.g. an adaptation candidate, to sign it)",
        _args(NAME, a("version"), a("--out", type=Path, required=True, help="an empty or new directory")),
        _pull_bundle, lambda args, d: f"{ref(d['model'])} -> {args.out} ({int(d['bundle_size']):,} bytes, verified)"),
    "models promote": Command(
        "widen the rollout's current version (a canary) to every node; the previous stays the rollback target",
        _args(NAME), _promote,
        _promoted),
}
