"""Human-rated non-movie text: the ground truth of the VADER paper, split train / validation / test.

Source: the *source distribution* of ``vaderSentiment`` 3.3.2 on PyPI (MIT; the wheel does not carry
it) holds ``additional_resources/hutto_ICWSM_2014.tar.gz`` (Hutto & Gilbert, ICWSM 2014). Three of
its corpora are used, each text rated -4..+4 by at least 20 people (the file keeps every rating):

- ``tweets``: 4,200 tweets;
- ``amazon``: 3,708 sentences of 300 Amazon product reviews;
- ``nyt``: 5,190 sentences of 498 New York Times editorials.

The fourth corpus, ``movieReviewSnippets``, is derived from the Rotten Tomatoes snippets whose test
split this project holds out; it is never read (asking for it raises).

Get the sdist once (nothing is fetched at run time)::

    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d build/data

:func:`find_sdist` looks for it at an explicit path, ``$SENTIEDGE_VADER_SDIST``, ``build/data/`` and
``~/.cache/sentiedge/``.

**Splits.** Per domain, 60% train, 20% validation, 20% test, stratified by rating band (mean < -1,
-1..1, > 1) and **grouped by document**: every sentence of one Amazon review or one editorial lands in
the same split, so no test sentence has a sibling from its own review in training. Documents are
placed greedily in a seeded order (seed :data:`SPLIT_SEED`), each where its bands are most short of
their target shares. A validation or test text that also occurs verbatim in train is dropped.

**Labels.** ``mean`` is the raters' mean (-4..4); ``p_positive`` is the soft label
``(n_positive + n_zero / 2) / n`` over the individual ratings (the chance that a rater picked at
random calls the text positive; a rating of 0 counts half). The binary view (:func:`polar`) keeps
texts with ``|mean| > 1`` (the issue's measure), labelled by sign; the three-way view
(:func:`three_way`) calls ``|mean| <= NEUTRAL_BAND`` neutral.
"""

from __future__ import annotations

import ast
import hashlib
import html
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data import Split

SDIST_NAME = "vaderSentiment-3.3.2.tar.gz"
PIP_COMMAND = "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d build/data"
INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
DOMAINS = {"tweets": "tweets", "amazon": "amazonReviewSnippets", "nyt": "nytEditorialSnippets"}
FORBIDDEN = "movieReviewSnippets"  # derived from Rotten Tomatoes: would leak its test split
SPLIT_SEED = 20260530
FRACTIONS = {"train": 0.6, "validation": 0.2, "test": 0.2}
POLAR = 1.0  # |mean| > POLAR: the binary evaluation set
NEUTRAL_BAND = 1.0  # |mean| <= NEUTRAL_BAND: neutral in the three-way view
LICENSE = "MIT (vaderSentiment 3.3.2 source distribution, C.J. Hutto)"


class MissingSource(FileNotFoundError):
    pass


@dataclass(frozen=True)
class Rated:
    id: str
    domain: str
    document: str
    text: str
    mean: float
    ratings: tuple[int, ...]

    @property
    def p_positive(self) -> float:
        r = np.asarray(self.ratings)
        return float(((r > 0).sum() + 0.5 * (r == 0).sum()) / r.size)

    @property
    def band(self) -> int:
        return 0 if self.mean < -POLAR else 2 if self.mean > POLAR else 1


def find_sdist(path: str | os.PathLike | None = None) -> Path:
    """The vaderSentiment 3.3.2 sdist: ``path`` (a file or a folder holding it), else
    ``$SENTIEDGE_VADER_SDIST``, ``build/data/``, ``~/.cache/sentiedge/``."""
    candidates = [Path(p) for p in (path, os.environ.get("SENTIEDGE_VADER_SDIST")) if p]
    candidates += [Path("build/data"), Path(__file__).resolve().parents[1] / "build" / "data",
                   Path.home() / ".cache" / "sentiedge"]
    for c in candidates:
        if c.is_file():
            return c
        if (c / SDIST_NAME).is_file():
            return c / SDIST_NAME
    raise MissingSource(f"the vaderSentiment 3.3.2 source distribution was not found (looked at "
                        f"{', '.join(str(c) for c in candidates)}); get it once with:\n    {PIP_COMMAND}\n"
                        "or point SENTIEDGE_VADER_SDIST at it")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _inner_archive(sdist: Path) -> tarfile.TarFile:
    with tarfile.open(sdist, "r:gz") as outer:
        member = next((m for m in outer.getmembers() if m.name.endswith(INNER)), None)
        if member is None:
            raise MissingSource(f"{sdist} holds no {INNER} (is it the source distribution? {PIP_COMMAND})")
        data = outer.extractfile(member).read()
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def _lines(archive: tarfile.TarFile, stem: str) -> list[list[str]]:
    if FORBIDDEN in stem:
        raise ValueError(f"{FORBIDDEN} is derived from Rotten Tomatoes and is never read")
    member = next(m for m in archive.getmembers() if m.name.endswith("/" + stem) or m.name == stem)
    text = archive.extractfile(member).read().decode("utf-8-sig", errors="replace")
    return [line.split("\t") for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def load_rated(sdist: str | os.PathLike | None = None) -> list[Rated]:
    """Every rated text of the three domains, in file order."""
    archive = _inner_archive(find_sdist(sdist))
    out = []
    for domain, stem in DOMAINS.items():
        ratings = {row[0].strip().lstrip("\ufeff"): tuple(ast.literal_eval(row[3].strip()))
                   for row in _lines(archive, f"{stem}_anonDataRatings.txt")}
        for row in _lines(archive, f"{stem}_GroundTruth.txt"):
            key = row[0].strip().lstrip("\ufeff")
            text = html.unescape("\t".join(row[2:]).strip())  # tweets carry "&amp;"
            document = key.split("_")[0] if domain != "tweets" else key
            out.append(Rated(key, domain, f"{domain}:{document}", text, float(row[1]), ratings[key]))
    return out


def split_rated(items: list[Rated], seed: int = SPLIT_SEED) -> dict[str, list[Rated]]:
    """Stratified (by band), grouped (by document) train / validation / test per domain."""
    splits = {name: [] for name in FRACTIONS}
    for domain in DOMAINS:
        docs: dict[str, list[Rated]] = {}
        for item in items:
            if item.domain == domain:
                docs.setdefault(item.document, []).append(item)
        names = sorted(docs)
        rng = np.random.default_rng([seed, list(DOMAINS).index(domain)])
        names = [names[i] for i in rng.permutation(len(names))]
        names.sort(key=lambda d: -len(docs[d]))  # stable: the seeded order among equal sizes
        totals = np.bincount([it.band for d in names for it in docs[d]], minlength=3).astype(float)
        counts = {s: np.zeros(3) for s in FRACTIONS}
        for d in names:
            bands = np.bincount([it.band for it in docs[d]], minlength=3)
            need = {s: float((bands * (FRACTIONS[s] * totals - counts[s]) / np.maximum(totals, 1)).sum())
                    for s in FRACTIONS}
            chosen = max(FRACTIONS, key=lambda s: need[s])  # ties: train, validation, test in that order
            counts[chosen] += bands
            splits[chosen].extend(docs[d])
    seen = {it.text for it in splits["train"]}
    for name in ("validation", "test"):
        splits[name] = [it for it in splits[name] if it.text not in seen]
    return splits


def load_splits(sdist: str | os.PathLike | None = None) -> dict[str, list[Rated]]:
    return split_rated(load_rated(sdist))


def polar(items: list[Rated], domain: str | None = None) -> Split:
    """The binary view: texts with |mean| > 1, label 1 when the mean is positive."""
    split = Split()
    for it in items:
        if (domain is None or it.domain == domain) and abs(it.mean) > POLAR:
            split.add(it.text, int(it.mean > 0), f"vader_{it.domain}")
    return split


def three_way(items: list[Rated], domain: str | None = None) -> tuple[list[str], np.ndarray]:
    """Texts and labels 0 negative, 1 neutral (|mean| <= NEUTRAL_BAND), 2 positive."""
    chosen = [it for it in items if domain is None or it.domain == domain]
    labels = [0 if it.mean < -NEUTRAL_BAND else 2 if it.mean > NEUTRAL_BAND else 1 for it in chosen]
    return [it.text for it in chosen], np.asarray(labels, np.int64)


def soft_training_set(items: list[Rated]) -> tuple[list[str], list[float]]:
    """Every training text with its raters' soft label P(positive)."""
    return [it.text for it in items], [it.p_positive for it in items]


def provenance(sdist: str | os.PathLike | None = None) -> dict:
    path = find_sdist(sdist)
    splits = load_splits(path)
    sizes = {s: {d: sum(it.domain == d for it in items) for d in DOMAINS} for s, items in splits.items()}
    return {
        "package": "vaderSentiment==3.3.2 source distribution (PyPI), " + INNER,
        "sha256": sha256_of(path),
        "license": LICENSE,
        "sources": {"tweets": "4,200 tweets", "amazon": "3,708 Amazon product-review sentences (300 reviews)",
                    "nyt": "5,190 New York Times editorial sentences (498 editorials)",
                    "excluded": f"{FORBIDDEN} (derived from Rotten Tomatoes; never read)"},
        "split": f"per domain, seed {SPLIT_SEED}: 60% train / 20% validation / 20% test, stratified by band "
                 f"(mean < -1, -1..1, > 1), grouped by document; validation/test texts verbatim in train dropped",
        "sizes": sizes,
        "labels": "soft label (n_positive + n_zero/2)/n over the individual ratings; binary evaluation on "
                  "|mean| > 1 by sign; three-way: |mean| <= 1 neutral",
    }
