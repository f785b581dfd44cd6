"""``edge-node`` command line: ``serve`` the HTTP API, ``score`` texts and files, or ``batch`` a history."""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import sys
from pathlib import Path

import msgspec

from edge_node.config import HELP, PREFIX, EdgeSettings, load_settings
from edge_node.errors import EdgeError
from edge_node.role import Role
from sentiedge_core import BUNDLE_DIR, settings_loader
from sentiedge_core.cli_parser import Parser


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="edge-node", description="Sentiedge edge node")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API")
    settings_loader.add_flags(serve, EdgeSettings, PREFIX, HELP)

    score = commands.add_parser("score", help="score texts, or a CSV file, with a model bundle")
    score.add_argument("texts", nargs="*", help="texts to score")
    score.add_argument("--file", type=Path, help="CSV file with a text column to score; every other column is "
                       "passed through to the output (one named like a result field gets an input_ prefix)")
    score.add_argument("--column", default="text", help="column of --file holding the text (default: text)")
    score.add_argument("--out", type=Path, help="write results here (default: stdout)")
    score.add_argument("--format", choices=["csv", "jsonl"], default=None,
                       help="output format (default: jsonl for --file, a table for texts)")
    score.add_argument("--model-dir", type=Path, default=None, help=f"bundle (default: {BUNDLE_DIR})")
    score.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    score.add_argument("--batch-size", type=int, default=64, help="texts scored per model call (default: 64)")

    batch = commands.add_parser(
        "batch", help="backfill history: score CSV, JSON lines or Parquet on Dask, write Parquet by day and "
        "daily aggregates (needs the batch extra)")
    batch.add_argument("source", help="a file, a directory or a glob, local or any fsspec URL (s3://, gs://, ...)")
    batch.add_argument("--out", required=True, help="output directory or fsspec URL (scored/day=*/, daily.parquet); "
                       "a rerun into the same one skips finished partitions")
    batch.add_argument("--format", choices=["csv", "jsonl", "parquet"], default=None,
                       help="input format (default: from each file's extension)")
    batch.add_argument("--column", default="text", help="column holding the text (default: text)")
    batch.add_argument("--time-column", default=None,
                       help="column with each record's time, ISO 8601 or epoch seconds/milliseconds (default: the "
                       "first of created_at, timestamp, time, date, datetime; 'none': every record in day=unknown)")
    batch.add_argument("--category-column", default=None, help="category/topic column (default: category, if present)")
    batch.add_argument("--user-column", default=None,
                       help="user column: aggregates count distinct users (default: user_id, if present; else texts)")
    batch.add_argument("--cohort-column", default=None,
                       help="a cohort key column (default: cohort if present, else region/device/daypart from "
                       "region and device columns, as edges key cohorts)")
    batch.add_argument("--min-size", type=int, default=None,
                       help="daily rows with fewer users are withheld (default: EDGE_COHORT_MIN_SIZE, 50)")
    batch.add_argument("--scheduler", default=None,
                       help="address of an existing Dask scheduler (tcp://host:8786; default: a local cluster)")
    batch.add_argument("--workers", type=int, default=None, help="local cluster: worker processes (default: cores)")
    batch.add_argument("--threads-per-worker", type=int, default=1, help="ONNX Runtime threads per worker (default: 1)")
    batch.add_argument("--partition-rows", type=int, default=5000, help="records per partition (default: 5000)")
    batch.add_argument("--batch-size", type=int, default=64, help="texts scored per model call (default: 64)")
    batch.add_argument("--retries", type=int, default=3, help="times a failed partition is run again (default: 3)")
    batch.add_argument("--model-dir", type=Path, default=None, help=f"bundle (default: {BUNDLE_DIR})")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")

    token = commands.add_parser("token", help="mint a user token for development from an apps file")
    token.add_argument("user", help="the user id (the token's sub)")
    token.add_argument("--apps-file", type=Path, default=None,
                       help="apps JSON with a signing secret (default: EDGE_APPS_FILE, else DATA_DIR/dev-app.json)")
    token.add_argument("--app", default=None, help="app name (default: the file's first app)")
    token.add_argument("--ttl", type=float, default=3600.0, help="seconds until the token expires")
    token.add_argument("--consent", action="append", default=[], metavar="PURPOSE",
                       help="grant this purpose in the token's signed consent claim; repeatable")
    token.add_argument("--policy-version", default="dev", help="the consent policy version the token names")
    return parser


def token(args: argparse.Namespace) -> int:
    import os

    from edge_node import app_sources
    from sentiedge_core.access import mint_token

    path = args.apps_file or Path(os.environ.get(PREFIX + "APPS_FILE") or
                                  Path(os.environ.get(PREFIX + "DATA_DIR", "var/edge")) / app_sources.DEV_FILE)
    apps = app_sources.from_file(path).apps
    app = next((a for a in apps if args.app in (None, a.name)), None)
    if app is None:
        raise EdgeError(f"{path} has no app named {args.app!r}", field="--app")
    entry = next(a for a in app_sources.read(path).apps if a.name == app.name)
    signing = next((k for k in reversed(entry.signing_keys) if k.secret or k.private_key), None)
    if signing is None:
        raise EdgeError(f"app {app.name!r} in {path} has no private key (or HS256 secret) to mint with: its backend "
                        f"holds it")
    print(mint_token(app, signing.verifying(), args.user, ttl_s=args.ttl,
                     consent={p: True for p in args.consent} or None, policy_version=args.policy_version,
                     private_key=signing.private_key.encode() or None))
    return 0


def configure_logging(settings: EdgeSettings, worker: int | None = None) -> None:
    tag = f" worker-{worker}" if worker is not None else ""
    logging.basicConfig(level=settings.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s %(name)s{tag}: %(message)s")


def serve(args: argparse.Namespace) -> int:
    from edge_node.http.server import connection_budget
    from edge_node.wiring import preflight
    from edge_node.workers import Supervisor, worker_count

    settings = load_settings(flags=vars(args))
    configure_logging(settings)
    preflight(settings)
    count = worker_count(settings.workers)
    if count == 1:
        from edge_node.http.app import create_app

        run_servers(create_app(settings), settings)
        return 0
    _, backlog = connection_budget(settings.max_connections, 2 if settings.admin_port else 1)
    flags = {k: v for k, v in vars(args).items() if k != "func"}
    return Supervisor(settings, flags, count, backlog, serve=serve_worker).run()


def serve_worker(flags: dict, role: Role, sockets: list, shared) -> None:
    """One worker of ``serve --workers N`` (edge_node.workers spawns it): the same app and servers
    as a single-process node, on the supervisor's sockets."""
    from edge_node.http.app import create_app

    settings = load_settings(flags=flags)
    configure_logging(settings, worker=role.index)
    run_servers(create_app(settings, role=role, shared=shared), settings, sockets=sockets)


def proxy_options(settings: EdgeSettings) -> dict:
    """uvicorn believes X-Forwarded-For from loopback unless told otherwise: a client on the same
    host (or behind a proxy that passes the header through) would choose the address the
    per-address rate limit counts. Only EDGE_TRUSTED_PROXIES are believed."""
    trusted = settings.trusted_proxy_list
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or []}


def run_servers(app, settings: EdgeSettings, sockets: list | None = None) -> None:
    """Serve the app on the public port (and the admin app on the admin port) until SIGTERM or
    SIGINT, then drain; on the supervisor's ``sockets`` when this is one of several workers."""
    import contextlib
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            # Same graceful drain as uvicorn's, but a completed shutdown exits 0 instead of
            # re-raising the signal, so supervisors see a clean stop.
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    class AdminServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # the public server owns the signals and stops this one
            yield

    from edge_node.http.app import create_admin_app
    from edge_node.http.server import Guard, connection_budget, fold_repeated_warnings

    max_connections, backlog = connection_budget(settings.max_connections, 2 if settings.admin_port else 1)

    def guard(admin: bool = False) -> type:
        def refused(what: str) -> None:
            node = app.state.get("node")
            if node is not None:
                node.metrics.slow_clients.labels(("admin_" if admin else "") + what).inc()

        return Guard(header_timeout_s=settings.header_timeout_s, body_timeout_s=settings.body_timeout_s,
                     max_connections=max_connections if not admin else min(max_connections, 256),
                     on_refused=refused).protocol()

    # log_config=None: uvicorn's loggers go through the root logger and its one format
    # (configure_logging), not a second format of their own.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level, log_config=None,
                            access_log=settings.access_log, lifespan="on", timeout_graceful_shutdown=10,
                            http=guard(), timeout_keep_alive=settings.keep_alive_timeout_s,
                            backlog=backlog, **proxy_options(settings))
    public = Server(config)
    app.state["public_server"] = public  # the admin port's /readyz waits until this one listens
    fold_repeated_warnings()  # after uvicorn configured its loggers
    public_sockets = sockets[:1] if sockets else None
    if not settings.admin_port:
        public.run(sockets=public_sockets)  # on SIGTERM: stop accepting, drain, run the shutdown
        return
    # Its own listener with its own connection cap: a flood on the public port leaves it answering.
    admin = AdminServer(uvicorn.Config(create_admin_app(app), host=settings.admin_host, port=settings.admin_port,
                                       log_level=settings.log_level, log_config=None, access_log=False,
                                       lifespan="off",
                                       http=guard(admin=True), timeout_keep_alive=settings.keep_alive_timeout_s,
                                       backlog=backlog, **proxy_options(settings)))

    async def both() -> None:
        admin_task = asyncio.create_task(admin.serve(sockets=sockets[1:] if sockets else None))
        try:
            await public.serve(sockets=public_sockets)
        finally:
            admin.should_exit = True
            await admin_task

    asyncio.run(both())


def _read_rows(path: Path, column: str) -> tuple[list[str], list[dict[str, str]]]:
    csv.field_size_limit(1 << 30)
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if column not in (reader.fieldnames or []):
                raise EdgeError(f"{path} has no column {column!r} (columns: {', '.join(reader.fieldnames or [])})",
                                field="--column")
            rows = [{k: v or "" for k, v in row.items() if k is not None} for row in reader]
            return list(reader.fieldnames or []), rows
    except UnicodeDecodeError as exc:
        raise EdgeError(f"{path} is not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x}): save it as "
                        f"UTF-8 and run again", field="--file") from None
    except OSError as exc:
        raise EdgeError(f"cannot read {path}: {exc.strerror}", field="--file") from None


RESULT_FIELDS = ["label", "score", "confidence", "stage", "model", "version", "language"]
EMPTY = "empty_text"  # as the API answers a blank text: no result, this error


def _passed_through(columns: list[str], column: str) -> dict[str, str]:
    """Input columns kept in the output, by their output name: the text column is ``text``;
    a column named like a result field (``label``, ``score``, …) gets an ``input_`` prefix."""
    out = {}
    for c in columns:
        clashes = c in RESULT_FIELDS or (c == "text" and column != "text")
        name = "text" if c == column else f"input_{c}" if clashes else c
        out[c] = name
    return out


def score(args: argparse.Namespace) -> int:
    import os

    from tqdm import tqdm

    from edge_node.scoring import judge
    from sentiedge_core import deep
    from sentiedge_core.inference import SentimentModel
    from sentiedge_core.language import LanguageGate

    if not args.texts and args.file is None:
        raise EdgeError("give texts to score, or --file FILE.csv", field="texts")
    environ_model = os.environ.get(PREFIX + "MODEL_DIR")
    model_dir = args.model_dir or (Path(environ_model) if environ_model else BUNDLE_DIR)
    model = SentimentModel(model_dir, threads=args.threads or os.cpu_count() or 1)
    if args.file:
        columns, rows = _read_rows(args.file, args.column)
        names = _passed_through(columns, args.column)
        texts = [row[args.column] for row in rows]
        inputs = [{names[c]: row.get(c, "") for c in columns} for row in rows]
    else:
        names, texts = {"text": "text"}, list(args.texts)
        inputs = [{"text": t} for t in texts]
    settings = load_settings()  # EDGE_LANGUAGES, EDGE_DEEP_STAGE: as the API answers
    gate = LanguageGate.from_settings(settings)
    deep_stage = deep.load(model.root, model.manifest, args.threads or 1) if settings.deep_stage else None
    if deep_stage is not None:
        model.check_golden(deep_stage)  # as serving does: a head that misjudges them is refused
    with tqdm(total=len(texts), desc="scoring", unit="text", disable=args.file is None, file=sys.stderr) as bar:
        results = judge(model, gate, texts, batch_size=args.batch_size, progress=bar.update, deep=deep_stage)
    fmt = args.format or ("jsonl" if args.file else "table")
    out = args.out.open("w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        if fmt == "jsonl":
            for row, r in zip(inputs, results, strict=False):
                found = msgspec.structs.asdict(r) if r is not None else {**dict.fromkeys(RESULT_FIELDS), "error": EMPTY}
                out.write(msgspec.json.encode({**row, **found}).decode() + "\n")
        elif fmt == "csv":
            writer = csv.writer(out)
            writer.writerow([*names.values(), *RESULT_FIELDS, "error"])
            for row, r in zip(inputs, results, strict=False):
                values = [getattr(r, f) for f in RESULT_FIELDS] if r is not None else [""] * len(RESULT_FIELDS)
                writer.writerow([*row.values(), *values, "" if r is not None else EMPTY])
        else:
            width = max([9, *(len(r.label) for r in results if r is not None)])
            out.write(f"{'label':<{width}} {'score':>7} {'conf':>5}  {'stage':<11} text\n")
            for text, r in zip(texts, results, strict=False):
                snippet = text if len(text) <= 60 else text[:57] + "..."
                if r is None:
                    out.write(f"{'-':<{width}} {'-':>7} {'-':>5}  {'-':<11} (empty: not scored)\n")
                    continue
                out.write(f"{r.label:<{width}} {r.score:>+7.3f} {r.confidence:>5.2f}  {r.stage:<11} {snippet}\n")
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(results)} results to {args.out}", file=sys.stderr)
    return 0


def batch(args: argparse.Namespace) -> int:
    try:
        import distributed  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise EdgeError(f"edge-node batch needs the batch extra (in a checkout: .venv/bin/pip install -e '.[batch]'; "
                        f"make test installs it): {exc}", field="batch") from exc
    from edge_node.batch.inputs import InputError
    from edge_node.batch.job import Options, run

    settings = load_settings()  # EDGE_LANGUAGES, EDGE_COHORT_MIN_SIZE, EDGE_MODEL_DIR: as the edge serves
    environ_model = os.environ.get(PREFIX + "MODEL_DIR")
    model_dir = args.model_dir or (Path(environ_model) if environ_model else BUNDLE_DIR)
    time_column = None if (args.time_column or "").lower() == "none" else args.time_column
    options = Options(out=args.out.rstrip("/"), text_column=args.column, time_column=time_column,
                      category_column=args.category_column, user_column=args.user_column,
                      cohort_column=args.cohort_column, batch_size=args.batch_size,
                      min_size=args.min_size if args.min_size is not None else settings.cohort_min_size)
    try:
        summary = run(args.source, options, model_dir=model_dir, fmt=args.format,
                      rows_per_partition=args.partition_rows, scheduler=args.scheduler, workers=args.workers,
                      threads=args.threads_per_worker, retries=args.retries, languages=settings.languages,
                      language_min_confidence=settings.language_min_confidence, progress=not args.no_progress,
                      time_given=args.time_column is not None)
    except InputError as exc:
        raise EdgeError(str(exc), field="source") from exc
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    print(f"scored {summary.rows} records in {summary.seconds:.1f} s ({rate:.0f}/s; {summary.skipped} of "
          f"{summary.partitions} partitions finished earlier); {summary.daily_rows} daily rows over {summary.days} "
          f"days: {summary.out}/daily.parquet", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = {"serve": serve, "score": score, "token": token, "batch": batch}[args.command](args)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not as a shutdown traceback
        return code
    except BrokenPipeError:  # `edge-node score ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except EdgeError as exc:
        print(f"edge-node: error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"edge-node: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
