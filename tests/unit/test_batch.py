"""edge-node batch, without a cluster: partitions, readers, times and days, daily aggregates,
the daily file's checks and its conversion to cohort aggregates, the shared scoring rule."""

import csv
import io
import json
import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from edge_node.batch import aggregate, inputs  # noqa: E402
from edge_node.batch.job import output_names  # noqa: E402
from edge_node.scoring import judge  # noqa: E402
from sentiedge_core import daily  # noqa: E402
from sentiedge_core.inference import Sentiment  # noqa: E402

TRICKY = ["plain", 'has, a comma', 'two\nlines', 'a "quoted" word', 'ends with quote"', "", "café ☕", 'x\r\ny']


def _csv_file(tmp_path, n=103):
    path = tmp_path / "in.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "text", "created_at"])
        for i in range(n):
            w.writerow([i, f"{TRICKY[i % len(TRICKY)]} {i}", f"2026-01-{1 + i % 28:02d}T10:00:00Z"])
    return path


@pytest.mark.parametrize("every", [1, 7, 50, 1000])
def test_csv_partitions_cut_on_records_and_read_back_every_record_once(tmp_path, every, monkeypatch):
    monkeypatch.setattr(inputs, "BLOCK", 64)  # records straddle blocks, quotes too
    path = _csv_file(tmp_path)
    expected = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    parts = inputs.plan(str(path), rows_per_partition=every)
    assert sum(p.rows for p in parts) == len(expected)
    assert all(p.rows == every for p in parts[:-1])
    got = pd.concat([inputs.read(p, "text") for p in parts], ignore_index=True)
    assert got.to_dict("records") == expected
    assert len({p.id for p in parts}) == len(parts)
    assert [p.id for p in inputs.plan(str(path), rows_per_partition=every)] == [p.id for p in parts]  # stable


def test_jsonl_and_parquet_and_a_directory(tmp_path):
    rows = [{"text": f"t{i}", "n": i, "created_at": 1767225600 + i} for i in range(25)]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:10]) + "\n")
    pq.write_table(pa.Table.from_pylist(rows[10:]), tmp_path / "d" / "b.parquet", row_group_size=4)
    (tmp_path / "d" / "_partitions").mkdir()  # an output's bookkeeping below the input is not read
    (tmp_path / "d" / "_partitions" / "x.json").write_text("{}")
    parts = inputs.plan(str(tmp_path / "d"), rows_per_partition=6)
    assert [(p.format, p.rows) for p in parts] == [("jsonl", 6), ("jsonl", 5), ("parquet", 8), ("parquet", 7)]
    got = pd.concat([inputs.read(p, "text") for p in parts], ignore_index=True)
    assert got["text"].tolist() == [r["text"] for r in rows]
    assert got["n"].tolist() == list(range(25))


def test_unknown_or_compressed_inputs_and_a_missing_column_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "a.csv.gz").write_bytes(b"x")
    with pytest.raises(inputs.InputError, match="--format"):
        inputs.plan(str(tmp_path / "a.txt"))
    with pytest.raises(inputs.InputError, match="compressed"):
        inputs.plan(str(tmp_path / "a.csv.gz"))
    with pytest.raises(inputs.InputError, match="no such file"):
        inputs.plan(str(tmp_path / "missing.csv"))
    (tmp_path / "b.csv").write_text("body\nhello\n")
    with pytest.raises(inputs.InputError, match="no column 'text'"):
        inputs.read(inputs.plan(str(tmp_path / "b.csv"))[0], "text")


def test_times_are_iso_or_epoch_seconds_or_milliseconds_and_days_are_utc():
    values = ["2026-03-01T23:30:00Z", "2026-03-01T23:30:00-02:00", "2026-03-01 10:00:00", "1772323200",
              1772323200000, "not a time", "", None, 1772323200.5]
    seconds = aggregate.epoch_seconds(values)
    assert aggregate.days(seconds) == ["2026-03-01", "2026-03-02", "2026-03-01", "2026-03-01", "2026-03-01",
                                       "unknown", "unknown", "unknown", "2026-03-01"]
    assert seconds[3] == 1772323200 and seconds[4] == 1772323200
    native = aggregate.epoch_seconds(pd.Series(pd.to_datetime(["2026-03-01T12:00:00Z", None], utc=True)))
    assert native[0] == 1772366400 and math.isnan(native[1])


def test_cohort_keys_are_the_edges():
    frame = pd.DataFrame({"region": ["EU", None], "device": ["Mobile", "desktop"]})
    seconds = aggregate.epoch_seconds(["2026-03-01T19:00:00Z", "2026-03-01T03:00:00Z"])
    assert aggregate.cohort_keys(frame, seconds, cohort=None, region="region", device="device") == [
        "eu/mobile/evening", "unknown/desktop/night"]
    assert aggregate.cohort_keys(frame, seconds, cohort=None, region=None, device=None) is None


def _scored(rows):
    return pd.DataFrame(rows, columns=["day", "cohort", "category", "user", "label", "score"])


def test_daily_aggregates_count_users_apply_the_minimum_and_let_neutral_through():
    rows = []
    for u in range(3):  # three users in eu, each two texts on the same day
        rows.append(("2026-01-01", "eu/mobile/evening", "garden", f"u{u}", "positive", 0.5))
        rows.append(("2026-01-01", "eu/mobile/evening", "beauty", f"u{u}", "neutral", 0.0))
    rows.append(("2026-01-01", "us/desktop/night", "garden", "lonely", "negative", -0.8))  # one user: withheld
    rows.append(("2026-01-01", "eu/mobile/evening", "garden", "u9", None, None))  # blank: not judged
    rows.append(("2026-01-01", "eu/mobile/evening", "garden", "u8", "unsupported_language", 0.0))
    rows.append(("unknown", "eu/mobile/evening", "garden", "u7", "positive", 0.9))  # no time: no day
    out = aggregate.daily(_scored(rows), labels=["negative", "neutral", "positive"], min_size=3, user="user")
    got = {(r.cohort, r.category): r for r in out.itertuples()}
    assert set(got) == {("eu/mobile/evening", "garden"), ("eu/mobile/evening", "beauty"), ("eu/mobile/evening", "*"),
                        ("all", "garden"), ("all", "beauty"), ("all", "*")}
    total = got[("eu/mobile/evening", "*")]
    assert (total.users, total.texts, total.negative, total.empty, total.not_judged) == (3, 6, 0, 1, 1)
    assert total.sentiment_mean == pytest.approx(0.25) and total.neutral_share == pytest.approx(0.5)
    assert total.share_positive == pytest.approx(0.5) and total.share_negative == 0
    everyone = got[("all", "*")]
    assert (everyone.users, everyone.texts, everyone.negative) == (4, 7, 1)  # "all" is over the threshold
    assert got[("eu/mobile/evening", "beauty")].neutral_share == 1.0
    assert list(out.columns)[:8] == ["day", "cohort", "category", "users", "texts", "negative", "sentiment_mean",
                                     "neutral_share"]


def test_daily_without_users_counts_texts_and_without_neutral_class_reports_zero():
    rows = [("2026-01-02", "all", "*", None, "positive", 0.6), ("2026-01-02", "all", "*", None, "negative", -0.2)]
    frame = _scored(rows).drop(columns=["user", "cohort", "category"])
    out = aggregate.daily(frame, labels=["negative", "positive"], min_size=2)
    assert out[["cohort", "category", "users", "texts"]].values.tolist() == [["all", "*", 2, 2]]
    assert out.loc[0, "neutral_share"] == 0.0 and "share_neutral" not in out.columns
    assert aggregate.daily(frame, labels=["negative", "positive"], min_size=3).empty


def test_daily_counts_negative_by_label_not_by_the_sign_of_the_score():
    # A neutral text can score below zero ("where is my order?" scores about -0.2): it is not a
    # negative text, as the edges' cohort cells do not count it either.
    rows = [("2026-01-02", "all", "*", None, "neutral", -0.21), ("2026-01-02", "all", "*", None, "negative", -0.7),
            ("2026-01-02", "all", "*", None, "positive", 0.4), ("2026-01-02", "all", "*", None, "neutral", -0.05)]
    frame = _scored(rows).drop(columns=["user", "cohort", "category"])
    (row,) = aggregate.daily(frame, labels=["negative", "neutral", "positive"], min_size=1).itertuples()
    assert (row.texts, row.negative, row.neutral_share, row.share_negative) == (4, 1, 0.5, 0.25)


def test_output_names_keep_every_input_column_beside_the_result():
    assert output_names(["body", "label", "day", "cohort", "text", "x"], "body") == {
        "body": "text", "label": "input_label", "day": "input_day", "cohort": "input_cohort", "text": "input_text",
        "x": "x"}


class _Model:
    name, version = "m", "1"

    def __init__(self):
        self.calls = []

    def score(self, texts, batch_size=32, deep=None):
        self.calls.append(list(texts))
        return [Sentiment(label="positive", score=0.5, confidence=0.75, stage="fast", model="m", version="1")
                for _ in texts]


class _Gate:
    def answer(self, text, model):
        return Sentiment(label="unsupported_language", score=0.0, confidence=0.9, stage="language", model="m",
                         version="1", language="fr") if text.startswith("fr:") else None


def test_judge_answers_blanks_as_the_api_does():
    model = _Model()
    got = judge(model, _Gate(), ["good", "  ", "fr: bonjour", "great"], batch_size=3)
    assert [r.label if r else None for r in got] == ["positive", None, "unsupported_language", "positive"]
    assert model.calls == [["good"], ["great"]]
    assert judge(_Model(), _Gate(), ["  ", ""]) == [None, None]


def _daily_file(tmp_path, rows):
    path = tmp_path / "daily.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _row(**kw):
    base = {"day": "2026-01-01", "cohort": "eu/mobile/evening", "category": "*", "users": 60, "texts": 90,
            "negative": 30, "sentiment_mean": 0.2, "neutral_share": 0.1}
    return {**base, **kw}


def test_daily_file_becomes_one_cohort_aggregate_per_day_and_cohort(tmp_path):
    path = _daily_file(tmp_path, [_row(), _row(category="garden", users=50, texts=70, negative=10, sentiment_mean=0.5),
                                  _row(day="2026-01-02", cohort="all")])
    rows = daily.read(path, min_size=50)
    aggs = daily.to_aggregates(rows)
    assert [(a.window_start, a.cohort) for a in aggs] == [(1767225600, "eu/mobile/evening"), (1767312000, "all")]
    a = aggs[0]
    assert (a.users, a.texts, a.negative, a.events, a.window_seconds) == (60, 90, 30, 90, 86400)
    assert a.sentiment_sum == pytest.approx(12.0) and a.categories == {"garden": pytest.approx(25.0)}
    assert a.topic_texts == {"garden": 70} and a.topic_sentiment == {"garden": pytest.approx(35.0)}


@pytest.mark.parametrize("bad, message", [
    (_row(users=49), "minimum size"), (_row(day="01/02/2026"), "YYYY-MM-DD"), (_row(negative=91), "negative"),
    (_row(sentiment_mean=1.5), "sentiment_mean"), (_row(cohort=""), "characters"),
    (_row(neutral_share=float("nan")), "neutral_share")])
def test_daily_file_rows_are_checked(tmp_path, bad, message):
    with pytest.raises(daily.DailyError, match=message):
        daily.read(_daily_file(tmp_path, [_row(), bad]), min_size=50)


def test_daily_file_limits_and_shape(tmp_path):
    path = _daily_file(tmp_path, [_row(), _row(cohort="all")])
    with pytest.raises(daily.DailyError, match="bytes, over the import limit"):
        daily.read(path, min_size=1, max_bytes=100)
    with pytest.raises(daily.DailyError, match="rows, over the import limit"):
        daily.read(path, min_size=1, max_rows=1)
    pq.write_table(pa.table({"user_id": ["ann"], "text": ["hello"]}), tmp_path / "raw.parquet")
    with pytest.raises(daily.DailyError, match="not daily aggregates"):
        daily.read(tmp_path / "raw.parquet", min_size=1)
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(daily.DailyError, match="not a Parquet file"):
        daily.read(tmp_path / "x.parquet", min_size=1)


def test_record_ranges_without_a_trailing_newline():
    header, ranges = inputs.record_ranges(io.BytesIO(b"text\na\nb\nc"), 2, csv=True)
    assert header == b"text\n" and ranges == [(5, 9, 2), (9, 10, 1)]
    header, ranges = inputs.record_ranges(io.BytesIO(b'{"text": "a"}\n{"text": "b"}\n'), 5, csv=False)
    assert header == b"" and ranges == [(0, 28, 2)]
    assert np.isnan(aggregate.epoch_seconds([None])[0])
