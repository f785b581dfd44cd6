"""``control-plane cohorts import FILE --tenant T``: a backfill's daily aggregates
(``edge-node batch`` writes ``OUT/daily.parquet``) sent in calls of whole days."""

from __future__ import annotations

from pathlib import Path

PER_CALL = 20_000  # rows per Cohorts.Import call (the server takes at most 25,000)


def add_parsers(cohorts) -> None:
    actions = cohorts.add_subparsers(dest="action", required=False)
    imp = actions.add_parser("import", help="import a backfill's daily aggregates (edge-node batch's daily.parquet) "
                             "as one tenant's priors for cold start")
    imp.add_argument("file", type=Path, help="the daily aggregates Parquet file (at most 64 MiB, 500,000 rows)")
    imp.add_argument("--tenant", default="", help="the tenant whose users get these priors (may be left out while "
                     "the control plane has one tenant; control-plane apps list shows them)")


def handles(args) -> bool:
    return args.command == "cohorts" and getattr(args, "action", None) == "import"


def chunks(rows: list, per_call: int = PER_CALL) -> list[list]:
    """Rows in calls of whole days, at most ``per_call`` rows each (a day larger than that is refused)."""
    by_day: dict[str, list] = {}
    for r in rows:
        by_day.setdefault(r.day, []).append(r)
    out: list[list] = [[]]
    for day in sorted(by_day):
        day_rows = by_day[day]
        if len(day_rows) > per_call:
            raise ValueError(f"day {day} has {len(day_rows)} rows, more than one call takes ({per_call})")
        if len(out[-1]) + len(day_rows) > per_call:
            out.append([])
        out[-1].extend(day_rows)
    return [c for c in out if c]


async def call(args, channel, metadata):
    from protos.sentiedge.v1 import operator_pb2 as pb
    from protos.sentiedge.v1 import operator_pb2_grpc
    from sentiedge_core import daily

    try:
        rows = daily.read(args.file, min_size=1)  # shape and limits here; the control plane applies its minimum
    except ModuleNotFoundError as exc:
        raise SystemExit(f"control-plane: reading Parquet needs the batch extra (pip install 'sentiedge[batch]'): "
                         f"{exc}") from None
    except (daily.DailyError, OSError, ValueError) as exc:
        raise SystemExit(f"control-plane: {exc}") from None
    if not rows:  # nothing to send, so nothing would check the tenant either: say so instead of "imported 0"
        raise SystemExit(f"control-plane: {args.file} holds no daily rows (a backfill writes none for days under "
                         "its minimum size: edge-node batch --min-size)")
    stub = operator_pb2_grpc.CohortsStub(channel)
    total = pb.ImportCohortsResponse()
    try:
        calls = chunks(rows)
    except ValueError as exc:
        raise SystemExit(f"control-plane: {args.file}: {exc}") from None
    days: set[str] = set()
    cohorts: set[str] = set()
    for part in calls:
        reply = await stub.Import(pb.ImportCohortsRequest(
            tenant=args.tenant, source=args.file.name,
            rows=[pb.DailyAggregate(**{f: getattr(r, f) for f in daily.DailyRow.__struct_fields__}) for r in part]),
            metadata=metadata)
        total.tenant = reply.tenant
        total.rows += reply.rows
        total.aggregates += reply.aggregates
        days.update(r.day for r in part)
        cohorts.update(r.cohort for r in part if r.category == daily.ALL_CATEGORIES)
    total.days, total.cohorts = len(days), len(cohorts)
    return total


def table(args, d: dict) -> str:
    return (f"imported {d['rows']} daily rows of {args.file} for tenant {d['tenant']}: {d['days']} days, "
            f"{d['cohorts']} cohorts ({d['aggregates']} day x cohort aggregates); edges get them as priors for "
            "cohorts the live merge has none for")
