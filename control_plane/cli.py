"""``control-plane`` command line: ``serve``, and the operator commands over gRPC.

Operator commands talk to ``--target`` (``CP_TARGET``, default 127.0.0.1:50051) with a
token from ``--token``, ``CP_TOKEN`` or the data directory's ``admin.token``. Tables for
people by default; ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path

from control_plane import __version__, cli_access
from sentiedge_core.privacy import PURPOSES
from sentiedge_core.rules import SIGNALS

CHUNK = 1 << 20


def _parser() -> argparse.ArgumentParser:
    from control_plane.config import HELP, PREFIX, CpSettings
    from sentiedge_core import settings_loader

    parser = argparse.ArgumentParser(prog="control-plane", description="Sentiedge control plane")
    parser.add_argument("--target", default=os.environ.get("CP_TARGET", "127.0.0.1:50051"),
                        help="control plane address for operator commands (env CP_TARGET)")
    parser.add_argument("--token", default=os.environ.get("CP_TOKEN"), help="operator token (env CP_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--ca", default=os.environ.get("CP_CA"), help="CA certificate for mTLS (env CP_CA)")
    parser.add_argument("--cert", default=os.environ.get("CP_CERT"), help="operator client certificate (env CP_CERT)")
    parser.add_argument("--key", dest="client_key", default=os.environ.get("CP_KEY"),
                        help="operator client key (env CP_KEY)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version and the protocol package")
    serve = commands.add_parser("serve", help="run the control plane (gRPC)")
    settings_loader.add_flags(serve, CpSettings, PREFIX, HELP)

    models = commands.add_parser("models", help="push, list, roll out and roll back model bundles")
    m = models.add_subparsers(dest="action", required=True)
    push = m.add_parser("push", help="upload a bundle directory (verified before it is accepted)")
    push.add_argument("path", type=Path)
    m.add_parser("list", help="bundles in the registry")
    rollout = m.add_parser("rollout", help="assign a version to all nodes, a sticky percentage, or named nodes")
    rollout.add_argument("name")
    rollout.add_argument("version")
    rollout.add_argument("--percent", type=int, default=None,
                         help="assign ceil(PERCENT%% of the fleet) nodes, picked by a sticky hash of the node id and "
                              "kept as nodes join (any share above 0 picks at least one; 0 picks none); "
                              "default: every node")
    rollout.add_argument("--nodes", default="", help="comma-separated node ids (overrides --percent)")
    rollout.add_argument("--allow-unknown", action="store_true",
                         help="accept --nodes that have not connected yet (otherwise refused)")
    rollback = m.add_parser("rollback", help="return every node to the previous version (before the first rollout: "
                                             "each node's own bundled model)")
    rollback.add_argument("name")
    status = m.add_parser("status", help="which node serves what")
    status.add_argument("name")
    m.add_parser("quality", help="disagreement rate of sampled, labelled predictions per model version")
    m.add_parser("drift", help="PSI of recent predictions against the model's reference, per node and overall")
    keygen = m.add_parser("keygen", help="create an Ed25519 signing key (KEY) and its public key (KEY.pub)")
    keygen.add_argument("key", type=Path)
    sign = m.add_parser("sign", help="sign a bundle directory with a private key (writes signature.json)")
    sign.add_argument("path", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="the Ed25519 private key (from models keygen)")

    privacy = commands.add_parser("privacy", help="revoke consent, delete users, and follow the receipts")
    p = privacy.add_subparsers(dest="action", required=True)
    revoke = p.add_parser("revoke", help="withdraw purposes for a user on every edge")
    revoke.add_argument("user")
    revoke.add_argument("--purpose", action="append", required=True, help="a purpose to withdraw; repeatable",
                        choices=list(PURPOSES))
    delete = p.add_parser("delete", help="erase a user on every edge")
    delete.add_argument("user")
    for filing in (revoke, delete):
        filing.add_argument("--idempotency-key", default="",
                            help="resend a request safely (default: a fresh key, reused on the command's own retries)")
    pstatus = p.add_parser("status", help="a request's state and per-node receipts")
    pstatus.add_argument("request_id")
    plist = p.add_parser("list", help="recent requests")
    plist.add_argument("--limit", type=int, default=20, help="how many, newest first (default: 20)")

    nodes = commands.add_parser("nodes", help="edges with region, model, cursor lag, last seen")
    nodes.add_argument("--decommission", metavar="NODE_ID", help="stop counting a node for privacy completion")
    cli_access.add_parsers(commands, nodes)
    commands.add_parser("cohorts", help="merged cohort signals per window (minimum size applied)")
    certs = commands.add_parser("certs", help="a development CA and certificates for mTLS")
    c = certs.add_subparsers(dest="action", required=True)
    cinit = c.add_parser("init", help="create the CA and the control plane's server certificate")
    cinit.add_argument("--dir", type=Path, default=Path("certs"), help="where the CA and certificates go (default: certs)")
    cinit.add_argument("--host", action="append", default=[], help="extra host name or IP of the control plane")
    cissue = c.add_parser("issue", help="a client certificate for a node id (or an operator)")
    cissue.add_argument("identity")
    cissue.add_argument("--dir", type=Path, default=Path("certs"), help="the CA directory from certs init (default: certs)")
    cissue.add_argument("--operator", action="store_true",
                        help="a certificate for an operator's CLI (prints CP_CA/CP_CERT/CP_KEY, not EDGE_TLS_*)")
    rules = commands.add_parser("rules", help="cohort sentiment triggers: add, list, remove, history")
    r = rules.add_subparsers(dest="action", required=True)
    radd = r.add_parser("add", help="act on a cohort when a windowed signal crosses a threshold")
    radd.add_argument("name")
    radd.add_argument("--cohort", required=True, help="region/device/daypart; '*' matches anything (eu/mobile/*)")
    radd.add_argument("--signal", required=True, help="what the rule watches in each closed window",
                      choices=list(SIGNALS))
    radd.add_argument("--category", default="", help="restrict the signal to one category (topic)")
    radd.add_argument("--op", choices=[">", "<"], default=">", help="fire above (>) or below (<) the threshold")
    radd.add_argument("--threshold", type=float, required=True, help="the value the signal must cross")
    radd.add_argument("--clear", type=float, default=None,
                      help="hysteresis: clears only past this value (default: 5%% of the range back)")
    radd.add_argument("--window", type=float, default=30.0, help="minutes")
    radd.add_argument("--min-size", type=int, default=50, help="users the cohort needs before the rule acts")
    radd.add_argument("--action", dest="rule_action", required=True,
                      help="content variant or flag to serve, e.g. sustainability_note")
    r.add_parser("list", help="the rules every edge applies")
    rremove = r.add_parser("remove", help="stop applying a rule on every edge")
    rremove.add_argument("name")
    rhistory = r.add_parser("history", help="changes, and activations and clearings the edges reported")
    rhistory.add_argument("--limit", type=int, default=50, help="how many entries, newest first")
    experiments = commands.add_parser("experiments", help="experiments with holdouts: add, list, report")
    x = experiments.add_subparsers(dest="action", required=True)
    xadd = x.add_parser("add", help="e.g. add ranking-v2 --arm control=45 --arm treatment=45 --arm holdout=10:holdout")
    xadd.add_argument("name")
    xadd.add_argument("--arm", action="append", required=True, help="NAME=WEIGHT, or NAME=WEIGHT:holdout")
    xadd.add_argument("--salt", default="", help="change it to reshuffle assignments (default: the name)")
    x.add_parser("list", help="experiments and their arms")
    xreport = x.add_parser("report", help="per arm and cohort: exposures, conversion, lift over holdout, CI, p")
    xreport.add_argument("name")
    tokens = commands.add_parser("tokens", help="operator tokens: add (shown once), list, revoke")
    t = tokens.add_subparsers(dest="action", required=True)
    tadd = t.add_parser("add", help="create a named token (printed once, stored hashed)")
    tadd.add_argument("name")
    t.add_parser("list", help="tokens, from the store and from CP_TOKENS")
    trevoke = t.add_parser("revoke", help="refuse a token from now on")
    trevoke.add_argument("name")
    audit = commands.add_parser("audit", help="who did what, when (newest first)")
    audit.add_argument("--limit", type=int, default=50, help="how many entries, newest first")

    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not as a shutdown traceback
        return code
    except BrokenPipeError:  # `control-plane audit | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        from protos.sentiedge.v1 import sync_pb2

        print(f"control-plane {__version__} (protocol {sync_pb2.DESCRIPTOR.package})")
        return 0
    if args.command == "certs":
        from control_plane import certs as ca
        from control_plane.errors import CpError

        try:
            if args.action == "init":
                ca.init(args.dir, args.host)
                print(f"CA and server certificate in {args.dir}: ca.crt, control-plane.crt/.key\n"
                      f"control plane: CP_TLS_CERT={args.dir}/control-plane.crt CP_TLS_KEY={args.dir}/control-plane.key "
                      f"CP_TLS_CLIENT_CA={args.dir}/ca.crt")
            else:
                path = ca.issue(args.dir, args.identity)
                if args.operator:
                    print(f"{path} and {path.with_suffix('.key')}: for operator commands, CP_CA={args.dir}/ca.crt "
                          f"CP_CERT={path} CP_KEY={path.with_suffix('.key')} (or --ca, --cert, --key)")
                else:
                    print(f"{path} and {path.with_suffix('.key')}: for the edge {args.identity}, EDGE_TLS_CERT={path} "
                          f"EDGE_TLS_KEY={path.with_suffix('.key')} EDGE_TLS_CA={args.dir}/ca.crt\n"
                          f"(an operator's certificate? issue it with --operator for the CP_CA/CP_CERT/CP_KEY variables)")
        except CpError as exc:
            print(f"control-plane: {exc.message}", file=sys.stderr)
            return 1
        return 0
    if args.command == "models" and args.action in ("keygen", "sign"):
        return _signing(args)
    if args.command == "serve":
        from control_plane.config import load_settings
        from control_plane.errors import CpError
        from control_plane.server import serve as run_server

        try:
            settings = load_settings(flags=vars(args))
        except CpError as exc:
            print(f"control-plane: {exc.message}", file=sys.stderr)
            return 2
        logging.basicConfig(level=settings.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            return asyncio.run(run_server(settings))
        except CpError as exc:  # cannot start: a store that will not open, a key that is not its own
            print(f"control-plane: error: {exc.message}", file=sys.stderr)
            return 2
    return asyncio.run(_operator(args))


def _signing(args) -> int:
    from sentiedge_core import signing
    from sentiedge_core.errors import SentiedgeError

    try:
        if args.action == "keygen":
            if args.key.exists():
                raise SystemExit(f"control-plane: {args.key} exists; not overwriting a key")
            public = signing.generate(args.key)
            print(f"private key {args.key} (keep it secret), public key {args.key.with_suffix('.pub')}\n"
                  f"key id {signing.key_id(public)}; give edges EDGE_TRUSTED_KEYS={signing.public_text(public)}")
        else:
            if not (args.path / "manifest.json").is_file():
                raise SystemExit(f"control-plane: {args.path} is not a bundle directory (no manifest.json)")
            from sentiedge_core.bundle import verify

            verify(args.path)  # never sign a bundle whose files do not match its manifest
            kid = signing.sign(args.path, signing.load_private(args.key))
            print(f"signed {args.path} with key {kid}")
    except SentiedgeError as exc:
        print(f"control-plane: {exc.message}", file=sys.stderr)
        return 1
    return 0


def _token(args) -> str:
    if args.token:
        return args.token
    path = Path(os.environ.get("CP_DATA_DIR", "var/control-plane")) / "admin.token"
    if path.exists():
        return path.read_text().strip()
    raise SystemExit("control-plane: no operator token: pass --token, set CP_TOKEN, or run where CP_DATA_DIR "
                     "holds admin.token")


async def _retrying(call, attempts: int = 6):
    """A privacy filing, retried while the control plane is unreachable or restarting. Every try
    carries the same idempotency key, so a request that landed before its reply was lost is
    returned, never filed twice."""
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


async def _operator(args) -> int:
    import grpc
    from google.protobuf.json_format import MessageToDict

    from protos.sentiedge.v1 import operator_pb2, operator_pb2_grpc

    metadata = (("authorization", f"Bearer {_token(args)}"),)
    options = [("grpc.max_send_message_length", 8 << 20)]
    if args.ca:
        credentials = grpc.ssl_channel_credentials(
            Path(args.ca).read_bytes(), Path(args.client_key).read_bytes() if args.client_key else None,
            Path(args.cert).read_bytes() if args.cert else None)
        channel_cm = grpc.aio.secure_channel(args.target, credentials, options=options)
    else:
        channel_cm = grpc.aio.insecure_channel(args.target, options=options)
    async with channel_cm as channel:
        models = operator_pb2_grpc.ModelsStub(channel)
        privacy = operator_pb2_grpc.PrivacyStub(channel)
        nodes = operator_pb2_grpc.NodesStub(channel)
        cohorts = operator_pb2_grpc.CohortsStub(channel)
        admin = operator_pb2_grpc.AdminStub(channel)
        try:
            if cli_access.handles(args):
                reply = await cli_access.call(args, channel, metadata)
            elif args.command == "models":
                if args.action == "push":
                    reply = await models.Push(_chunks(args.path), metadata=metadata)
                elif args.action == "list":
                    reply = await models.List(operator_pb2.ListModelsRequest(), metadata=metadata)
                elif args.action == "rollout":
                    request = operator_pb2.RolloutRequest(name=args.name, version=args.version,
                                                          nodes=[n for n in args.nodes.split(",") if n],
                                                          allow_unknown=args.allow_unknown)
                    if args.percent is not None:
                        request.percent = args.percent
                    reply = await models.Rollout(request, metadata=metadata)
                elif args.action == "quality":
                    reply = await models.Quality(operator_pb2.QualityRequest(), metadata=metadata)
                elif args.action == "drift":
                    reply = await models.Drift(operator_pb2.DriftRequest(), metadata=metadata)
                elif args.action == "rollback":
                    reply = await models.Rollback(operator_pb2.RollbackRequest(name=args.name), metadata=metadata)
                else:
                    reply = await models.Status(operator_pb2.ModelStatusRequest(name=args.name), metadata=metadata)
            elif args.command == "privacy":
                key = getattr(args, "idempotency_key", "") or f"cli-{uuid.uuid4().hex}"
                if args.action == "revoke":
                    reply = await _retrying(lambda: privacy.Revoke(operator_pb2.RevokeRequest(
                        user_id=args.user, purposes=args.purpose, idempotency_key=key), metadata=metadata, timeout=30))
                elif args.action == "delete":
                    reply = await _retrying(lambda: privacy.Delete(operator_pb2.DeleteRequest(
                        user_id=args.user, idempotency_key=key), metadata=metadata, timeout=30))
                elif args.action == "status":
                    reply = await privacy.Status(operator_pb2.PrivacyStatusRequest(request_id=args.request_id),
                                                 metadata=metadata)
                else:
                    reply = await privacy.List(operator_pb2.ListPrivacyRequests(limit=args.limit), metadata=metadata)
            elif args.command == "nodes":
                if args.decommission:
                    reply = await nodes.Decommission(operator_pb2.DecommissionRequest(node_id=args.decommission),
                                                     metadata=metadata)
                else:
                    reply = await nodes.List(operator_pb2.ListNodesRequest(), metadata=metadata)
            elif args.command == "rules":
                rules_stub = operator_pb2_grpc.RulesStub(channel)
                if args.action == "add":
                    step = 0.05 if args.signal in ("negative_share", "mean_sentiment") else max(1.0, abs(args.threshold) * 0.1)
                    clear = args.clear if args.clear is not None else (
                        args.threshold - step if args.op == ">" else args.threshold + step)
                    from protos.sentiedge.v1 import sync_pb2

                    reply = await rules_stub.Add(sync_pb2.TriggerRule(
                        name=args.name, cohort=args.cohort, signal=args.signal, category=args.category, op=args.op,
                        threshold=args.threshold, clear=clear, window_minutes=args.window, min_size=args.min_size,
                        action=args.rule_action), metadata=metadata)
                elif args.action == "remove":
                    reply = await rules_stub.Remove(operator_pb2.RemoveRuleRequest(name=args.name), metadata=metadata)
                elif args.action == "history":
                    reply = await rules_stub.History(operator_pb2.RuleHistoryRequest(limit=args.limit),
                                                     metadata=metadata)
                else:
                    reply = await rules_stub.List(operator_pb2.ListRulesRequest(), metadata=metadata)
            elif args.command == "experiments":
                from protos.sentiedge.v1 import sync_pb2

                stub = operator_pb2_grpc.ExperimentsStub(channel)
                if args.action == "add":
                    arms = []
                    for spec in args.arm:
                        name, _, rest = spec.partition("=")
                        weight, _, flag = rest.partition(":")
                        if not name or not weight.isdigit() or flag not in ("", "holdout"):
                            raise SystemExit(f"control-plane: --arm {spec!r}: use NAME=WEIGHT or NAME=WEIGHT:holdout")
                        arms.append(sync_pb2.Arm(name=name, weight=int(weight), holdout=flag == "holdout"))
                    reply = await stub.Add(sync_pb2.Experiment(name=args.name, salt=args.salt or args.name, arms=arms),
                                           metadata=metadata)
                elif args.action == "report":
                    reply = await stub.Report(operator_pb2.ExperimentReportRequest(name=args.name), metadata=metadata)
                else:
                    reply = await stub.List(operator_pb2.ListExperimentsRequest(), metadata=metadata)
            elif args.command == "tokens":
                if args.action == "add":
                    reply = await admin.AddToken(operator_pb2.AddTokenRequest(name=args.name), metadata=metadata)
                elif args.action == "revoke":
                    reply = await admin.RevokeToken(operator_pb2.RevokeTokenRequest(name=args.name), metadata=metadata)
                else:
                    reply = await admin.ListTokens(operator_pb2.ListTokensRequest(), metadata=metadata)
            elif args.command == "audit":
                reply = await admin.Audit(operator_pb2.AuditRequest(limit=args.limit), metadata=metadata)
            else:
                reply = await cohorts.Merged(operator_pb2.MergedCohortsRequest(), metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            print(f"control-plane: {exc.code().name}: {exc.details()}{_hint(args, exc)}", file=sys.stderr)
            return 1
    data = MessageToDict(reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    for warning in data.get("warnings", []) if isinstance(data.get("warnings"), list) else []:
        print(f"control-plane: warning: {warning}", file=sys.stderr)
    print(json.dumps(data, indent=2) if args.json else _table(args, data))
    return 0


def _hint(args, exc) -> str:
    """What to check when the call never reached the control plane."""
    import grpc

    if exc.code() != grpc.StatusCode.UNAVAILABLE:
        return ""
    details = f"{exc.details()} {exc.debug_error_string()}".lower()
    if "refused" in details or "name resolution" in details or "dns" in details:
        return (f"\nhint: nothing answers at {args.target}: is the control plane running there? "
                f"Set --target or CP_TARGET")
    if args.ca and not (args.cert and args.client_key):
        return ("\nhint: the TLS connection was closed: the control plane wants a client certificate; pass --cert "
                "and --key (CP_CERT, CP_KEY), issued with control-plane certs issue NAME --operator")
    if not args.ca:
        return ("\nhint: the connection was closed: if the control plane serves TLS, pass --ca (CP_CA), and --cert "
                "and --key (CP_CERT, CP_KEY) when it wants a client certificate")
    return "\nhint: the TLS handshake failed: check that --ca is the CA that issued the control plane's certificate"


async def _chunks(path: Path):
    from tqdm import tqdm

    from sentiedge_core.bundle import pack
    from protos.sentiedge.v1 import operator_pb2

    if not (path / "manifest.json").is_file():
        raise SystemExit(f"control-plane: {path} is not a bundle directory (no manifest.json)")
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "bundle.tar"
        pack(path, tar)
        total = tar.stat().st_size
        with tar.open("rb") as fh, tqdm(total=total, unit="B", unit_scale=True, desc=f"push {path.name}",
                                         file=sys.stderr) as bar:
            while block := fh.read(CHUNK):
                bar.update(len(block))
                yield operator_pb2.PushChunk(data=block)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _kind(kind: str) -> str:
    return kind.replace("PRIVACY_KIND_", "").lower()


def _ref(ref: dict) -> str:
    return f"{ref.get('name', '')} {ref.get('version', '')}".strip() or "-"


def _rows(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in rows)])


def _table(args, d: dict) -> str:
    if cli_access.handles(args):
        return cli_access.table(args, d)
    if args.command == "models" and args.action in ("push",):
        return (f"{_ref(d['model'])}  manifest {d['model']['manifest_sha256'][:12]}  {int(d['bundle_size']):,} bytes"
                f"{'  (already present)' if d['already_present'] else ''}")
    if args.command == "models" and args.action == "list":
        return _rows(["name", "version", "manifest", "size", "pushed"],
                     [[m["model"]["name"], m["model"]["version"], m["model"]["manifest_sha256"][:12],
                       f"{int(m['bundle_size']):,}", _when(m["pushed_at"])] for m in d["models"]])
    if args.command == "models" and args.action == "quality":
        return _rows(["model", "scope", "labelled", "disagreements", "rate"],
                     [[r["model"], r["scope"], r["labelled"], r["disagreements"], f"{r['disagreement_rate']:.1%}"]
                      for r in d.get("rows", [])])
    if args.command == "models" and args.action == "drift":
        return _rows(["scope", "model", "predictions", "label PSI", "confidence PSI", "drift"],
                     [[r["scope"], r["model"], r["predictions"], f"{r['label_psi']:.3f}", f"{r['confidence_psi']:.3f}",
                       "DRIFT" if r["drift"] else "-"] for r in d.get("rows", [])])
    if args.command == "models":
        bundled = "each node's bundled model"
        current = bundled if d.get("current_bundled") else _ref(d["current"])
        previous = bundled if d.get("previous_bundled") else _ref(d["previous"])
        if current == "-":
            head = f"{d['name']}: no rollout yet; every node serves the model it was installed with"
        else:
            share = "named nodes" if d["nodes"] else f"{d['percent']}% of nodes"
            head = (f"{d['name']}: current {current} for {share} ({', '.join(d['chosen']) or 'none yet'}), "
                    f"previous {previous}")
        return head + "\n" + _rows(["node", "assigned", "serving", "state", "error"],
                                   [[s["node_id"], _ref(s["assigned"]), _ref(s["serving"]), s["state"], s["error"]]
                                    for s in d["node_states"]])
    if args.command == "privacy" and args.action == "list":
        return _rows(["request", "seq", "kind", "state", "created", "missing"],
                     [[r["request_id"], r["seq"], _kind(r["kind"]), r["state"], _when(r["created_at"]), ",".join(r["missing"])]
                      for r in d["requests"]])
    if args.command == "privacy":
        receipts = "\n".join(f"  {r['node_id']:<20} {_when(r['at'])}" for r in d["receipts"]) or "  (none yet)"
        return (f"{d['request_id']}  seq {d['seq']}  {_kind(d['kind'])}  {' '.join(d['purposes'])}\n"
                f"state: {d['state']}  created {_when(d['created_at'])}  completed {_when(d['completed_at'])}\n"
                f"subject (pseudonymized): {d['subject']}\nreceipts:\n{receipts}\n"
                f"missing: {', '.join(d['missing']) or '-'}")
    if args.command == "nodes" and "nodes" in d:
        return _rows(["node", "region", "state", "model", "cursor", "lag", "last seen", "connected since", "personal"],
                     [[n["node_id"], n["region"], n["state"], _ref(n["model"]), n["privacy_cursor"], n["cursor_lag"],
                       _when(n["last_seen"]), _when(n["connected_since"]), "yes" if n["serving_personal"] else "no"]
                      for n in d["nodes"]])
    if args.command == "nodes":
        return f"{d['node_id']}: {d['state']}"
    if args.command == "rules" and args.action == "list":
        return _rows(["rule", "cohort", "signal", "category", "when", "clear", "window", "min size", "action"],
                     [[r["name"], r["cohort"], r["signal"], r["category"] or "-", f"{r['op']} {r['threshold']:g}",
                       f"{r['clear']:g}", f"{r['window_minutes']:g} min", r["min_size"], r["action"]]
                      for r in d.get("rules", [])])
    if args.command == "rules" and args.action == "history":
        return _rows(["when", "node", "rule", "cohort", "event", "value"],
                     [[_when(e["at"]), e["node_id"] or "(operator)", e["rule"], e["cohort"] or "-", e["event"],
                       f"{e['value']:g}"] for e in d["entries"]])
    if args.command == "rules":
        return f"{args.action} rule {d['name']}: {d['cohort']} {d['signal']} {d['op']} {d['threshold']:g} -> {d['action']}"
    if args.command == "experiments" and args.action == "report" and not d["results"]:
        return (f"{d['name']} (holdout: {d['holdout']}): no figures yet. Edges count each arm's exposures and "
                f"conversions per cohort window and send them upstream when the window closes "
                f"(EDGE_COHORT_WINDOW_MINUTES, 30 by default), with their next heartbeat; the first figures appear "
                f"after the first window with exposures closes.")
    if args.command == "experiments" and args.action == "report":
        rows = []
        for r in d["results"]:
            stats = ("(holdout)" if r["is_holdout"] else
                     f"{r['lift']:+.1%}  [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]  p={r['p_value']:.3g}")
            rows.append([r["arm"], r["cohort"], r["exposures"], r["conversions"], f"{r['conversion_rate']:.4f}",
                         stats, r["warning"]])
        return f"{d['name']} (holdout: {d['holdout']})\n" + _rows(
            ["arm", "cohort", "exposures", "conversions", "rate", "lift  [95% CI of the difference]  p", "warning"], rows)
    if args.command == "experiments":
        items = d["experiments"] if "experiments" in d else [d]
        return "\n".join(f"{e['name']}: " + ", ".join(f"{a['name']}={a['weight']}{' (holdout)' if a['holdout'] else ''}"
                                                     for a in e["arms"]) for e in items)
    if args.command == "tokens" and args.action == "list":
        return _rows(["name", "source", "created", "revoked"],
                     [[t["name"], t["source"], _when(t["created_at"]), _when(t["revoked_at"])] for t in d["tokens"]])
    if args.command == "tokens" and args.action == "add":
        return f"token {d['name']}: {d['token']}\n(shown once; it is stored hashed. Revoke: control-plane tokens revoke {d['name']})"
    if args.command == "tokens":
        return f"revoked token {d['name']}"
    if args.command == "audit":
        return _rows(["when", "who", "action", "ok", "detail"],
                     [[_when(e["at"]), e["who"], e["action"], "yes" if e["ok"] else "NO", e["detail"]]
                      for e in d["entries"]])
    return _rows(["window", "cohort", "users", "texts", "negative", "mean sentiment", "events"],
                 [[_when(int(c["window_start"])), c["cohort"], c["users"], c["texts"], c["negative"],
                   f"{c['sentiment_sum'] / max(c['users'], 1):+.3f}", c["events"]] for c in d["cohorts"]])


if __name__ == "__main__":
    raise SystemExit(main())
