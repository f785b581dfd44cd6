"""Daily sentiment aggregates of a history backfill (``edge-node batch``), as written to
Parquet and read back by ``control-plane cohorts import``.

One row per day × cohort × category: ``cohort`` is an edge cohort key (region/device/daypart)
or ``all``; ``category`` a normalized category or ``*`` (every category of that day and
cohort). ``users`` is the number of distinct users behind the row (or of texts, where the
input names no user: then each text counts as its own contributor), and rows under the cohort
minimum size are never written. Nothing in a row is per user. :func:`to_aggregates` turns the
rows into cohort aggregates (one per day and cohort), the shape edges already send.
"""

from __future__ import annotations

import datetime as dt
import math

import msgspec

from sentiedge_core.cohorts import Aggregate

ALL_COHORTS = "all"
ALL_CATEGORIES = "*"
DAY_SECONDS = 86_400
FORMAT = "sentiedge.daily/1"  # in the Parquet schema's metadata
MAX_IMPORT_BYTES = 64 << 20  # a daily file larger than this is refused by the import
MAX_IMPORT_ROWS = 500_000
MAX_KEY_CHARS = 200


class DailyRow(msgspec.Struct, kw_only=True, frozen=True):
    day: str  # YYYY-MM-DD (UTC)
    cohort: str
    category: str
    users: int
    texts: int  # texts the model judged (blank and unsupported-language texts not counted)
    negative: int  # texts scored below 0 (as edges count them)
    sentiment_mean: float  # mean score in [-1, 1]
    neutral_share: float = 0.0  # share of label "neutral" (0 where the bundle has no neutral class)


class DailyError(ValueError):
    """A daily aggregates file the import refuses; the message says which row or limit."""


def day_start(day: str) -> int:
    return int(dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC).timestamp())


def check(row: DailyRow, min_size: int) -> str | None:
    """Why ``row`` cannot be imported, or None."""
    try:
        day_start(row.day)
    except ValueError:
        return f"day {row.day!r} is not YYYY-MM-DD"
    if not row.cohort or len(row.cohort) > MAX_KEY_CHARS or not row.category or len(row.category) > MAX_KEY_CHARS:
        return "cohort and category must be 1-200 characters"
    if row.users < min_size:
        return f"users {row.users} under the minimum size {min_size}"
    if not (0 <= row.negative <= row.texts) or row.texts < 1:
        return "texts must be >= 1 and negative within [0, texts]"
    if not (math.isfinite(row.sentiment_mean) and -1.0 <= row.sentiment_mean <= 1.0):
        return f"sentiment_mean {row.sentiment_mean} outside [-1, 1]"
    if not (math.isfinite(row.neutral_share) and 0.0 <= row.neutral_share <= 1.0):
        return f"neutral_share {row.neutral_share} outside [0, 1]"
    return None


def read(path, *, min_size: int, max_bytes: int = MAX_IMPORT_BYTES, max_rows: int = MAX_IMPORT_ROWS) -> list[DailyRow]:
    """The rows of a daily aggregates Parquet file, every one checked; refuses a file over
    ``max_bytes`` or ``max_rows``, one without the columns, or a row under ``min_size`` users."""
    import os

    import pyarrow.parquet as pq

    size = os.path.getsize(path)
    if size > max_bytes:
        raise DailyError(f"{path}: {size} bytes, over the import limit of {max_bytes}")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own types
        raise DailyError(f"{path}: not a Parquet file: {exc}") from exc
    if table.num_rows > max_rows:
        raise DailyError(f"{path}: {table.num_rows} rows, over the import limit of {max_rows}")
    needed = [f for f in DailyRow.__struct_fields__ if f != "neutral_share"]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise DailyError(f"{path}: not daily aggregates (missing {', '.join(missing)})")
    columns = {c: table.column(c).to_pylist() for c in DailyRow.__struct_fields__ if c in table.column_names}
    rows = []
    for i in range(table.num_rows):
        try:
            row = msgspec.convert({c: v[i] for c, v in columns.items() if v[i] is not None}, DailyRow)
        except msgspec.ValidationError as exc:
            raise DailyError(f"{path}: row {i}: {exc}") from exc
        problem = check(row, min_size)
        if problem:
            raise DailyError(f"{path}: row {i} ({row.day} {row.cohort} {row.category}): {problem}")
        rows.append(row)
    return rows


def to_aggregates(rows: list[DailyRow]) -> list[Aggregate]:
    """One cohort aggregate per day and cohort: totals from its ``*`` row, per-category fields
    from the others (a review's weight is its score, as an edge weighs a review). A day and
    cohort without a ``*`` row (withheld for its size) is left out."""
    totals: dict[tuple[str, str], DailyRow] = {}
    topics: dict[tuple[str, str], list[DailyRow]] = {}
    for r in rows:
        if r.category == ALL_CATEGORIES:
            totals[(r.day, r.cohort)] = r
        else:
            topics.setdefault((r.day, r.cohort), []).append(r)
    out = []
    for (day, cohort), t in sorted(totals.items()):
        parts = topics.get((day, cohort), [])
        out.append(Aggregate(
            window_start=day_start(day), window_seconds=DAY_SECONDS, cohort=cohort, users=t.users, texts=t.texts,
            negative=t.negative, events=t.texts, sentiment_sum=t.sentiment_mean * t.users,
            categories={r.category: r.sentiment_mean * r.users for r in parts},
            topic_texts={r.category: r.texts for r in parts}, topic_negative={r.category: r.negative for r in parts},
            topic_events={r.category: r.texts for r in parts},
            topic_sentiment={r.category: r.sentiment_mean * r.texts for r in parts}))
    return out
