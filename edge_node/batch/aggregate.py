"""Times, days and cohort keys of scored records, and their daily aggregates.

A record's time is ISO 8601 (a naive one is UTC) or epoch seconds (a number over 10^11 is read
as milliseconds). Days are UTC; a record without a readable time goes to day ``unknown`` and
counts in no aggregate. A cohort key is the edge's (``region/device/daypart``, daypart of the
record's UTC hour) when the input has ``region`` or ``device`` columns, or the input's own
``cohort`` column; every record also counts in the ``all`` cohort.
"""

from __future__ import annotations

import numpy as np

from edge_node.personalization.cohorts import cohort_key, daypart
from edge_node.personalization.profiles import normalize_category
from sentiedge_core.daily import ALL_CATEGORIES, ALL_COHORTS
from sentiedge_core.inference import UNSUPPORTED

UNKNOWN_DAY = "unknown"
MS_THRESHOLD = 1e11  # epoch values above this are milliseconds


def epoch_seconds(values) -> np.ndarray:
    """Each value as epoch seconds (float), NaN where it is missing or unreadable."""
    import pandas as pd

    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = pd.to_datetime(series, utc=True)
        out = np.full(len(series), np.nan)
        ok = parsed.notna().to_numpy()
        out[ok] = parsed[ok].astype("int64").to_numpy() / _per_second(parsed.dtype)
        return out
    as_text = series.astype("string").str.strip()
    numbers = pd.to_numeric(as_text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    numbers = np.where(np.abs(numbers) > MS_THRESHOLD, numbers / 1000.0, numbers)
    rest = np.isnan(numbers) & as_text.notna().to_numpy() & (as_text != "").fillna(False).to_numpy()
    if rest.any():
        parsed = pd.to_datetime(as_text[rest], utc=True, errors="coerce", format="ISO8601")
        seconds = np.full(int(rest.sum()), np.nan)
        ok = parsed.notna().to_numpy()
        seconds[ok] = parsed[ok].astype("int64").to_numpy() / _per_second(parsed.dtype)
        numbers[rest] = seconds
    return numbers


def _per_second(dtype) -> float:
    unit = getattr(dtype, "unit", "ns")
    return {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]


def days(seconds: np.ndarray) -> list[str]:
    import pandas as pd

    stamps = pd.to_datetime(pd.Series(seconds), unit="s", utc=True, errors="coerce")
    return [UNKNOWN_DAY if pd.isna(s) else s.strftime("%Y-%m-%d") for s in stamps]


def cohort_keys(frame, seconds: np.ndarray, *, cohort: str | None, region: str | None,
                device: str | None) -> list[str] | None:
    """The edge cohort key of each record, or None where the input names no cohort."""
    if cohort:
        return [_clean_key(v) for v in frame[cohort]]
    if not region and not device:
        return None
    regions = frame[region] if region else [None] * len(frame)
    devices = frame[device] if device else [None] * len(frame)
    return [cohort_key(_text(r), _text(d), daypart(s) if s == s else "unknown")
            for r, d, s in zip(regions, devices, seconds, strict=False)]


def _text(value) -> str | None:
    return None if value is None or value != value else str(value)


def _clean_key(value) -> str:
    text = (_text(value) or "").strip().lower()
    return text or "unknown"


def categories(values) -> list[str]:
    return [normalize_category(_text(v) or "") or "unknown" for v in values]


def daily(frame, *, labels: list[str], min_size: int, user: str | None = None):
    """Daily rows (``sentiedge_core.daily``) of scored records: ``frame`` has ``day``,
    ``label``, ``score``, and optionally ``cohort``, ``category`` (normalized) and the user
    column. Rows under ``min_size`` users (texts, without a user column) are dropped."""
    import pandas as pd

    frame = frame[frame["day"] != UNKNOWN_DAY]
    label = frame["label"].astype(object).where(frame["label"].notna(), None)
    judged = (label.notna() & (label != UNSUPPORTED)).astype(bool)
    base = pd.DataFrame({
        "day": frame["day"].astype(str),
        "cohort": frame["cohort"].astype(str) if "cohort" in frame else ALL_COHORTS,
        "category": frame["category"].astype(str) if "category" in frame else ALL_CATEGORIES,
        "texts": judged.astype("int64"),
        # by label, as the edges count: a neutral text can score below zero and is not negative
        "negative": (judged & (label == "negative")).astype("int64"),
        "score": frame["score"].astype(float).where(judged, 0.0),
        "not_judged": (label == UNSUPPORTED).astype("int64"),
        "empty": label.isna().astype("int64"),
    })
    for name in dict.fromkeys([*labels, "neutral"]):
        base[f"share_{name}"] = (judged & (label == name)).astype("int64")
    if user:
        base["user"] = frame[user].where(judged, None).map(_text)
    shares = [c for c in base.columns if c.startswith("share_")]
    sums = ["texts", "negative", "score", "not_judged", "empty", *shares]
    levels = [("cohort", "category")]
    if "cohort" in frame:
        levels.append(("all", "category"))
    if "category" in frame:
        levels.append(("cohort", "*"))
    if "cohort" in frame and "category" in frame:
        levels.append(("all", "*"))
    parts = []
    for cohort_level, category_level in dict.fromkeys(levels):
        view = base.copy()
        if cohort_level == "all":
            view["cohort"] = ALL_COHORTS
        if category_level == "*":
            view["category"] = ALL_CATEGORIES
        grouped = view.groupby(["day", "cohort", "category"], sort=True)
        out = grouped[sums].sum()
        out["users"] = grouped["user"].nunique() if user else out["texts"]
        parts.append(out.reset_index())
    if not parts or base.empty:
        return _empty(labels)
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[(rows["texts"] > 0) & (rows["users"] >= min_size)].copy()
    rows["sentiment_mean"] = (rows["score"] / rows["texts"]).round(6)
    for c in shares:
        rows[c] = (rows[c] / rows["texts"]).round(6)
    rows["neutral_share"] = rows["share_neutral"]
    if "neutral" not in labels:
        rows = rows.drop(columns=["share_neutral"])
    return _order(rows.drop(columns=["score"]), labels).reset_index(drop=True)


def _order(rows, labels: list[str]):
    head = ["day", "cohort", "category", "users", "texts", "negative", "sentiment_mean", "neutral_share"]
    shares = [f"share_{name}" for name in labels]
    rows = rows.astype({"users": "int64", "texts": "int64", "negative": "int64", "not_judged": "int64",
                        "empty": "int64"})
    return rows[[*head, *shares, "not_judged", "empty"]].sort_values(["day", "cohort", "category"])


def _empty(labels: list[str]):
    import pandas as pd

    columns = {"day": "string", "cohort": "string", "category": "string", "users": "int64", "texts": "int64",
               "negative": "int64", "sentiment_mean": "float64", "neutral_share": "float64",
               **{f"share_{name}": "float64" for name in labels}, "not_judged": "int64", "empty": "int64"}
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in columns.items()})
