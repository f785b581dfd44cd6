"""The operator commands as one table: name → help, parser setup, gRPC call, table renderer.

Adding a command is one entry here (``cli.py`` builds the parser, dispatches and renders from
this table); ``--json`` prints the reply itself, so a renderer only serves people.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sentiedge_core.privacy import PURPOSES
from sentiedge_core.rules import SIGNALS

if TYPE_CHECKING:
    from protos.sentiedge.v1 import operator_pb2_grpc as stubs

CHUNK = 1 << 20

GROUPS = {
    "models": "push, list, roll out and roll back model bundles",
    "privacy": "revoke consent, delete users, and follow the receipts",
    "rules": "cohort sentiment triggers (on a whole cohort, a category or a topic): add, list, remove, history",
    "experiments": "experiments with holdouts: add, list, report (optionally within one learned segment)",
    "tokens": "operator tokens: add (shown once), list, revoke",
}


class Rpc(NamedTuple):
    """What a command's call needs: the stubs and the call metadata (the operator's token)."""

    models: stubs.ModelsStub
    privacy: stubs.PrivacyStub
    nodes: stubs.NodesStub
    cohorts: stubs.CohortsStub
    admin: stubs.AdminStub
    rules: stubs.RulesStub
    experiments: stubs.ExperimentsStub
    topics: stubs.TopicsStub
    webhooks: stubs.WebhooksStub
    metadata: tuple


class Command(NamedTuple):
    help: str
    setup: Callable  # (argparse parser) -> None: its arguments
    call: Callable[..., Awaitable]  # (args, Rpc) -> the reply message
    render: Callable[..., str]  # (args, reply as a dict) -> text for people


def _none(parser) -> None:
    return None


def _args(*specs) -> Callable:
    """A setup adding ``specs``: (flags tuple, keyword dict) pairs."""
    def setup(parser) -> None:
        for flags, kw in specs:
            parser.add_argument(*flags, **kw)
    return setup


def a(*flags: str, **kw) -> tuple:
    return flags, kw


# --- rendering helpers ------------------------------------------------------------------------
def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def kind(k: str) -> str:
    return k.replace("PRIVACY_KIND_", "").lower()


def ref(r: dict) -> str:
    return f"{r.get('name', '')} {r.get('version', '')}".strip() or "-"


def rows(header: list[str], body: list[list]) -> str:
    widths = ([max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)] if body
              else [len(h) for h in header])
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False))  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in body)])


# --- calls that need more than one line -------------------------------------------------------
async def _chunks(path: Path):
    from tqdm import tqdm

    from protos.sentiedge.v1 import operator_pb2
    from sentiedge_core.bundle import pack

    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "bundle.tar"
        pack(path, tar)
        with tar.open("rb") as fh, tqdm(total=tar.stat().st_size, unit="B", unit_scale=True,
                                         desc=f"push {path.name}", file=sys.stderr) as bar:
            while block := fh.read(CHUNK):
                bar.update(len(block))
                yield operator_pb2.PushChunk(data=block)


async def _push(args, rpc: Rpc):
    # Checked before the upload starts: an error raised inside the stream grpc reads would
    # surface as a bare CancelledError, not as this line.
    if not args.path.is_dir():
        raise SystemExit(f"control-plane: {args.path} is not a directory (give a bundle directory, e.g. "
                         f"models/sentiment-cascade)")
    if not (args.path / "manifest.json").is_file():
        raise SystemExit(f"control-plane: {args.path} is not a bundle directory (no manifest.json)")
    return await rpc.models.Push(_chunks(args.path), metadata=rpc.metadata)


async def retrying(call, attempts: int = 6):
    """A privacy filing, retried while the control plane is unreachable or restarting. Every try
    carries the same idempotency key, so a request that landed before its reply was lost is
    returned, never filed twice."""
    import asyncio

    import grpc

    for attempt in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                    or attempt == attempts - 1:
                raise
            wait = 0.5 * 2 ** attempt
            print(f"control-plane: {exc.code().name.lower()}; retrying in {wait:g} s with the same idempotency key",
                  file=sys.stderr)
            await asyncio.sleep(wait)


def _key(args) -> str:
    return args.idempotency_key or f"cli-{uuid.uuid4().hex}"


async def _waited(args, rpc: Rpc, reply):
    """With ``--wait S``: the request's status once every registered edge sent its receipt, or
    after S seconds, whichever comes first (a note on stderr says which)."""
    import asyncio
    import time

    if not args.wait:
        return reply
    deadline = time.monotonic() + args.wait
    while reply.state != "completed" and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        reply = await rpc.privacy.Status(_pb().PrivacyStatusRequest(request_id=reply.request_id),
                                         metadata=rpc.metadata, timeout=30)
    if reply.state != "completed":
        print(f"control-plane: still {reply.state} after {args.wait:g} s; missing {', '.join(reply.missing)} "
              f"(control-plane privacy status {reply.request_id})", file=sys.stderr)
    return reply


async def _revoke(args, rpc: Rpc):
    key = _key(args)
    return await _waited(args, rpc, await retrying(lambda: rpc.privacy.Revoke(_pb().RevokeRequest(
        user_id=args.user, purposes=args.purpose, idempotency_key=key, tenant=args.tenant), metadata=rpc.metadata,
        timeout=30)))


async def _delete(args, rpc: Rpc):
    key = _key(args)
    return await _waited(args, rpc, await retrying(lambda: rpc.privacy.Delete(_pb().DeleteRequest(
        user_id=args.user, idempotency_key=key, tenant=args.tenant), metadata=rpc.metadata, timeout=30)))


async def _rollout(args, rpc: Rpc):
    from protos.sentiedge.v1 import operator_pb2 as pb

    request = pb.RolloutRequest(name=args.name, version=args.version, nodes=[n for n in args.nodes.split(",") if n],
                                allow_unknown=args.allow_unknown)
    if args.percent is not None:
        request.percent = args.percent
    return await rpc.models.Rollout(request, metadata=rpc.metadata)


async def _rule_add(args, rpc: Rpc):
    from protos.sentiedge.v1 import sync_pb2

    step = 0.05 if args.signal in ("negative_share", "mean_sentiment") else max(1.0, abs(args.threshold) * 0.1)
    clear = args.clear if args.clear is not None else (
        args.threshold - step if args.op == ">" else args.threshold + step)
    return await rpc.rules.Add(sync_pb2.TriggerRule(
        name=args.name, cohort=args.cohort, signal=args.signal, category=args.category, op=args.op,
        threshold=args.threshold, clear=clear, window_minutes=args.window, min_size=args.min_size,
        action=args.rule_action, segment=args.segment, tenant=args.tenant, topic=args.topic), metadata=rpc.metadata)


async def _experiment_add(args, rpc: Rpc):
    from protos.sentiedge.v1 import sync_pb2

    arms = []
    for spec in args.arm:
        name, _, rest = spec.partition("=")
        weight, _, flag = rest.partition(":")
        if not name or not weight.isdigit() or flag not in ("", "holdout"):
            raise SystemExit(f"control-plane: --arm {spec!r}: use NAME=WEIGHT or NAME=WEIGHT:holdout")
        arms.append(sync_pb2.Arm(name=name, weight=int(weight), holdout=flag == "holdout"))
    return await rpc.experiments.Add(sync_pb2.Experiment(name=args.name, salt=args.salt or args.name, arms=arms,
                                                         segment=args.segment, tenant=args.tenant),
                                      metadata=rpc.metadata)


def _pb():
    from protos.sentiedge.v1 import operator_pb2

    return operator_pb2


# --- renderers ----------------------------------------------------------------------------------
def _rollout_table(args, d: dict) -> str:
    bundled = "each node's bundled model"
    current = bundled if d.get("current_bundled") else ref(d["current"])
    previous = bundled if d.get("previous_bundled") else ref(d["previous"])
    if current == "-":
        head = f"{d['name']}: no rollout yet; every node serves the model it was installed with"
    else:
        share = "named nodes" if d["nodes"] else f"{d['percent']}% of nodes"
        chosen = ", ".join(d["chosen"]) or "none yet"
        head = f"{d['name']}: current {current} for {share} ({chosen}), previous {previous}"
    return head + "\n" + rows(["node", "assigned", "serving", "state", "error"],
                              [[s["node_id"], ref(s["assigned"]), ref(s["serving"]), s["state"], s["error"]]
                               for s in d["node_states"]])


def _request_table(args, d: dict) -> str:
    receipts = "\n".join(f"  {r['node_id']:<20} {when(r['at'])}" for r in d["receipts"]) or "  (none yet)"
    return (f"{d['request_id']}  seq {d['seq']}  {kind(d['kind'])}  {' '.join(d['purposes'])}\n"
            f"state: {d['state']}  created {when(d['created_at'])}  completed {when(d['completed_at'])}\n"
            f"subject (pseudonymized): {d['subject']}\nreceipts:\n{receipts}\n"
            f"missing: {', '.join(d['missing']) or '-'}")


def _cohorts_table(args, d: dict) -> str:
    if not d["cohorts"]:  # say why it is empty, not just a header
        whose = f" for tenant {args.tenant}" if getattr(args, "tenant", "") else ""
        return (f"no merged cohort cells{whose} yet. A cell is shown once a closed window (edges close one every "
                "EDGE_COHORT_WINDOW_MINUTES, 30 by default) held at least CP_COHORT_MIN_SIZE users (50 by default) "
                "with the cohort_analytics purpose granted; smaller cells never leave an edge.")
    return rows(["tenant", "window", "cohort", "users", "texts", "negative", "mean sentiment", "events"],
                [[c.get("tenant") or "-", when(int(c["window_start"])), c["cohort"], c["users"], c["texts"],
                  c["negative"], f"{c['sentiment_sum'] / max(c['users'], 1):+.3f}", c["events"]]
                 for c in d["cohorts"]])


def _rule_table(args, d: dict) -> str:
    what = d["signal"] + (f" of topic {d['topic']}" if d.get("topic") else "")
    return (f"{args.action} rule {d['name']}: {d['cohort']} {what} {d['op']} {d['threshold']:g} -> {d['action']}"
            + (f" (segment {d['segment']} only)" if d.get("segment") else "")
            + (f" (tenant {d['tenant']} only)" if d.get("tenant") else " (each tenant's cohorts apart)"))


def _experiments_table(args, d: dict) -> str:
    items = d["experiments"] if "experiments" in d else [d]
    return "\n".join(f"{e['name']}: " + ", ".join(f"{x['name']}={x['weight']}{' (holdout)' if x['holdout'] else ''}"
                                                 for x in e["arms"])
                     + (f"  (segment {e['segment']} only)" if e.get("segment") else "")
                     + (f"  (tenant {e['tenant']} only)" if e.get("tenant") else "") for e in items)


def _segments_table(args, d: dict) -> str:
    if not d["k"]:
        return "learned segments are off (CP_SEGMENTS=0)"
    if not d["segments"]:
        return (f"no segments yet (k={d['k']}): the edges send seed clusters of their consenting users when a "
                f"cohort window closes (EDGE_COHORT_WINDOW_MINUTES); the control plane seeds the centroids once "
                f"it has k clusters of at least the minimum size")
    return (f"segments v{d['version']} (k={d['k']}, dimension {d['dimension']}, updated {when(d['updated_at'])})\n"
            + rows(["segment", "label", "last round", "decayed size", "top affinities"],
                   [[g["id"], g["label"], g["last_users"], f"{g['users']:.1f}",
                     ", ".join(f"{c} {v:+.2f}" for c, v in sorted(g["categories"].items(), key=lambda kv: -kv[1])[:4])]
                    for g in d["segments"]]))


def _report_table(args, d: dict) -> str:
    if not d["results"]:
        return (f"{d['name']} (holdout: {d['holdout']}): no figures yet. Edges count each arm's exposures and "
                f"conversions per cohort window and send them upstream when the window closes "
                f"(EDGE_COHORT_WINDOW_MINUTES, 30 by default), with their next heartbeat; the first figures appear "
                f"after the first window with exposures closes.")
    body = []
    for r in d["results"]:
        stats = ("(holdout)" if r["is_holdout"] else
                 f"{r['lift']:+.1%}  [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]  p={r['p_value']:.3g}")
        body.append([r["arm"], r["cohort"], r["exposures"], r["conversions"], f"{r['conversion_rate']:.4f}", stats,
                     r["warning"]])
    return f"{d['name']} (holdout: {d['holdout']})\n" + rows(
        ["arm", "cohort", "exposures", "conversions", "rate", "lift  [95% CI of the difference]  p", "warning"], body)


def _nodes_table(args, d: dict) -> str:
    if "nodes" not in d:
        return f"{d['node_id']}: {d['state']}"
    return rows(["node", "region", "state", "model", "cursor", "lag", "last seen", "connected since", "personal"],
                [[n["node_id"], n["region"], n["state"], ref(n["model"]), n["privacy_cursor"], n["cursor_lag"],
                  when(n["last_seen"]), when(n["connected_since"]), "yes" if n["serving_personal"] else "no"]
                 for n in d["nodes"]])


async def _nodes(args, rpc: Rpc):
    pb = _pb()
    if args.decommission:
        return await rpc.nodes.Decommission(pb.DecommissionRequest(node_id=args.decommission), metadata=rpc.metadata)
    return await rpc.nodes.List(pb.ListNodesRequest(), metadata=rpc.metadata)


NAME = a("name")
LIMIT50 = a("--limit", type=int, default=50, help="how many entries, newest first")
IDEMPOTENCY = a("--idempotency-key", default="",
                help="resend a request safely (default: a fresh key, reused on the command's own retries)")
WAIT = a("--wait", type=float, default=0.0, metavar="SECONDS",
         help="wait up to this long for every edge's receipt, then print the final status")
TENANT = a("--tenant", default="", help="the user's tenant (the same id in two tenants is two people); "
                                        "may be left out while there is one tenant")

COMMANDS: dict[str, Command] = {
    "models push": Command(
        "upload a bundle directory (verified before it is accepted)", _args(a("path", type=Path)), _push,
        lambda args, d: (f"{ref(d['model'])}  manifest {d['model']['manifest_sha256'][:12]}  "
                         f"{int(d['bundle_size']):,} bytes{'  (already present)' if d['already_present'] else ''}")),
    "models list": Command(
        "bundles in the registry", _none,
        lambda args, rpc: rpc.models.List(_pb().ListModelsRequest(), metadata=rpc.metadata),
        lambda args, d: rows(["name", "version", "manifest", "size", "pushed"],
                             [[m["model"]["name"], m["model"]["version"], m["model"]["manifest_sha256"][:12],
                               f"{int(m['bundle_size']):,}", when(m["pushed_at"])] for m in d["models"]])),
    "models rollout": Command(
        "assign a version to all nodes, a sticky percentage, or named nodes",
        _args(NAME, a("version"),
              a("--percent", type=int, default=None,
                help="assign ceil(PERCENT%% of the fleet) nodes, picked by a sticky hash of the node id and kept as "
                     "nodes join (any share above 0 picks at least one; 0 picks none); default: every node"),
              a("--nodes", default="", help="comma-separated node ids (overrides --percent)"),
              a("--allow-unknown", action="store_true",
                help="accept --nodes that have not connected yet (otherwise refused)")),
        _rollout, _rollout_table),
    "models rollback": Command(
        "return every node to the previous version (before the first rollout: each node's own bundled model)",
        _args(NAME),
        lambda args, rpc: rpc.models.Rollback(_pb().RollbackRequest(name=args.name), metadata=rpc.metadata),
        _rollout_table),
    "models status": Command(
        "which node serves what", _args(NAME),
        lambda args, rpc: rpc.models.Status(_pb().ModelStatusRequest(name=args.name), metadata=rpc.metadata),
        _rollout_table),
    "models drift": Command(
        "PSI of recent predictions against the model's reference, per node and overall", _none,
        lambda args, rpc: rpc.models.Drift(_pb().DriftRequest(), metadata=rpc.metadata),
        lambda args, d: rows(["scope", "model", "predictions", "label PSI", "confidence PSI", "drift"],
                             [[r["scope"], r["model"], r["predictions"], f"{r['label_psi']:.3f}",
                               f"{r['confidence_psi']:.3f}", "DRIFT" if r["drift"] else "-"]
                              for r in d.get("rows", [])])),
    "privacy revoke": Command(
        "withdraw purposes for a user on every edge",
        _args(a("user"), a("--purpose", action="append", required=True, choices=list(PURPOSES),
                           help="a purpose to withdraw; repeatable"), TENANT, IDEMPOTENCY, WAIT),
        _revoke, _request_table),
    "privacy delete": Command("erase a user on every edge", _args(a("user"), TENANT, IDEMPOTENCY, WAIT), _delete,
                              _request_table),
    "privacy status": Command(
        "a request's state and per-node receipts", _args(a("request_id")),
        lambda args, rpc: rpc.privacy.Status(_pb().PrivacyStatusRequest(request_id=args.request_id),
                                             metadata=rpc.metadata),
        _request_table),
    "privacy list": Command(
        "recent requests", _args(a("--limit", type=int, default=20, help="how many, newest first (default: 20)")),
        lambda args, rpc: rpc.privacy.List(_pb().ListPrivacyRequests(limit=args.limit), metadata=rpc.metadata),
        lambda args, d: rows(["request", "seq", "kind", "state", "created", "missing"],
                             [[r["request_id"], r["seq"], kind(r["kind"]), r["state"], when(r["created_at"]),
                               ",".join(r["missing"])] for r in d["requests"]])),
    "nodes": Command(
        "edges with region, model, cursor lag, last seen",
        _args(a("--decommission", metavar="NODE_ID", help="stop counting a node for privacy completion")),
        _nodes, _nodes_table),
    "cohorts": Command(
        "merged cohort signals per tenant and window (minimum size applied)",
        _args(a("--tenant", default="", help="this tenant's cells only (default: every tenant's)")),
        lambda args, rpc: rpc.cohorts.Merged(_pb().MergedCohortsRequest(tenant=args.tenant), metadata=rpc.metadata),
        _cohorts_table),
    "segments": Command(
        "learned segments: label, members in the last round, decayed size", _none,
        lambda args, rpc: rpc.cohorts.Segments(_pb().ListSegmentsRequest(), metadata=rpc.metadata),
        _segments_table),
    "rules add": Command(
        "act on a cohort when a windowed signal crosses a threshold",
        _args(NAME,
              a("--cohort", required=True, help="region/device/daypart; '*' matches anything (eu/mobile/*)"),
              a("--signal", required=True, choices=list(SIGNALS), help="what the rule watches in each closed window"),
              a("--category", default="", help="restrict the signal to one category of the events"),
              a("--topic", default="", help="the signal over one topic's aspects (texts that mention it): "
                                            "negative_share or text_volume"),
              a("--op", choices=[">", "<"], default=">", help="fire above (>) or below (<) the threshold"),
              a("--threshold", type=float, required=True, help="the value the signal must cross"),
              a("--clear", type=float, default=None,
                help="hysteresis: clears only past this value (default: 5%% of the range back)"),
              a("--window", type=float, default=30.0, help="minutes"),
              a("--min-size", type=int, default=50, help="users the cohort needs before the rule acts"),
              a("--action", dest="rule_action", required=True,
                help="content variant or flag to serve, e.g. sustainability_note"),
              a("--segment", default="", help="serve the action only to users of this learned segment (s2)"),
              a("--tenant", default="", help="this tenant's cohorts only (default: each tenant's cohorts apart, "
                                             "never merged across tenants)")),
        _rule_add, _rule_table),
    "rules list": Command(
        "the rules every edge applies", _none,
        lambda args, rpc: rpc.rules.List(_pb().ListRulesRequest(), metadata=rpc.metadata),
        lambda args, d: rows(["rule", "tenant", "cohort", "signal", "category/topic", "when", "clear", "window",
                              "min size", "action"],
                             [[r["name"], r.get("tenant") or "(each)", r["cohort"], r["signal"],
                               r["category"] or (f"topic {r['topic']}" if r.get("topic") else "-"),
                               f"{r['op']} {r['threshold']:g}", f"{r['clear']:g}", f"{r['window_minutes']:g} min",
                               r["min_size"], r["action"]] for r in d.get("rules", [])])),
    "rules remove": Command(
        "stop applying a rule on every edge", _args(NAME),
        lambda args, rpc: rpc.rules.Remove(_pb().RemoveRuleRequest(name=args.name), metadata=rpc.metadata),
        _rule_table),
    "rules history": Command(
        "changes, and activations and clearings the edges reported", _args(LIMIT50),
        lambda args, rpc: rpc.rules.History(_pb().RuleHistoryRequest(limit=args.limit), metadata=rpc.metadata),
        lambda args, d: rows(["when", "node", "rule", "cohort", "event", "value"],
                             [[when(e["at"]), e["node_id"] or "(operator)", e["rule"], e["cohort"] or "-", e["event"],
                               f"{e['value']:g}"] for e in d["entries"]])),
    "experiments add": Command(
        "e.g. add ranking-v2 --arm control=45 --arm treatment=45 --arm holdout=10:holdout",
        _args(NAME, a("--arm", action="append", required=True, help="NAME=WEIGHT, or NAME=WEIGHT:holdout"),
              a("--salt", default="", help="change it to reshuffle assignments (default: the name)"),
              a("--segment", default="", help="only users of this learned segment (s2) take part"),
              a("--tenant", default="", help="only this tenant's users (and its apps' anonymous traffic) take part "
                                             "(default: every tenant's; counts are kept per tenant either way)")),
        _experiment_add, _experiments_table),
    "experiments list": Command(
        "experiments and their arms", _none,
        lambda args, rpc: rpc.experiments.List(_pb().ListExperimentsRequest(), metadata=rpc.metadata),
        _experiments_table),
    "experiments report": Command(
        "per arm and cohort: exposures, conversion, lift over holdout, CI, p", _args(NAME),
        lambda args, rpc: rpc.experiments.Report(_pb().ExperimentReportRequest(name=args.name), metadata=rpc.metadata),
        _report_table),
    "tokens add": Command(
        "create a named token (printed once, stored hashed)", _args(NAME),
        lambda args, rpc: rpc.admin.AddToken(_pb().AddTokenRequest(name=args.name), metadata=rpc.metadata),
        lambda args, d: (f"token {d['name']}: {d['token']}\n(shown once; it is stored hashed. "
                         f"Revoke: control-plane tokens revoke {d['name']})")),
    "tokens list": Command(
        "tokens, from the store and from CP_TOKENS", _none,
        lambda args, rpc: rpc.admin.ListTokens(_pb().ListTokensRequest(), metadata=rpc.metadata),
        lambda args, d: rows(["name", "source", "created", "revoked"],
                             [[t["name"], t["source"], when(t["created_at"]), when(t["revoked_at"])]
                              for t in d["tokens"]])),
    "tokens revoke": Command(
        "refuse a token from now on", _args(NAME),
        lambda args, rpc: rpc.admin.RevokeToken(_pb().RevokeTokenRequest(name=args.name), metadata=rpc.metadata),
        lambda args, d: f"revoked token {d['name']}"),
    "audit": Command(
        "who did what, when (newest first)", _args(LIMIT50),
        lambda args, rpc: rpc.admin.Audit(_pb().AuditRequest(limit=args.limit), metadata=rpc.metadata),
        lambda args, d: rows(["when", "who", "action", "ok", "detail"],
                             [[when(e["at"]), e["who"], e["action"], "yes" if e["ok"] else "NO", e["detail"]]
                              for e in d["entries"]])),
}


def key_of(args) -> str:
    """The table key of the parsed command line."""
    return f"{args.command} {args.action}" if getattr(args, "action", None) else args.command


def add_parsers(commands, groups: dict) -> dict:
    """Every table command under ``commands``; ``groups`` collects the group parsers (their
    subparsers), so local commands (models keygen, ...) can join them. Returns the parsers."""
    parsers = {}
    for name, command in COMMANDS.items():
        group, _, action = name.partition(" ")
        if action:
            if group not in groups:
                groups[group] = commands.add_parser(group, help=GROUPS[group]).add_subparsers(dest="action",
                                                                                          required=True)
            parser = groups[group].add_parser(action, help=command.help)
        else:
            parser = commands.add_parser(group, help=command.help)
        command.setup(parser)
        parsers[name] = parser
    return parsers
