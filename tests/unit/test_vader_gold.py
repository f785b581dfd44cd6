"""models.vader_gold on a small synthetic sdist laid out like vaderSentiment 3.3.2's (no download)."""

import io
import tarfile

import numpy as np
import pytest

from models import vader_gold


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _fake_sdist(tmp_path, with_movies: bool = True):
    rng = np.random.default_rng(0)
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for domain, stem in vader_gold.DOMAINS.items():
            truth, ratings = [], []
            for doc in range(1, 41):
                for sentence in range(1, 1 + (1 if domain == "tweets" else 3)):
                    key = str(doc) if domain == "tweets" else f"{doc}_{sentence}"
                    center = (-3, 0, 3)[(doc + sentence) % 3]  # negative, neutral and positive documents
                    votes = np.clip(center + rng.integers(-1, 2, size=20), -4, 4) if center else np.zeros(20, int)
                    mean = votes.mean()
                    truth.append(f"{key}\t{mean}\t{domain} text {key} &amp; more\r\n")
                    ratings.append(f"{key}\t{mean}\t1.0\t{list(map(int, votes))}\r\n")
            bom = "\ufeff" if domain == "amazon" else ""  # the real Amazon ratings file starts with a BOM
            _add(tar, f"hutto_ICWSM_2014/{stem}_GroundTruth.txt", "".join(truth).encode())
            _add(tar, f"hutto_ICWSM_2014/{stem}_anonDataRatings.txt", (bom + "".join(ratings)).encode())
        if with_movies:
            _add(tar, "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt", b"1\t2.0\tleak\r\n")
    path = tmp_path / vader_gold.SDIST_NAME
    with tarfile.open(path, "w:gz") as outer:
        _add(outer, "vaderSentiment-3.3.2/" + vader_gold.INNER, inner.getvalue())
    return path


def test_splits_are_grouped_stratified_disjoint_and_fixed(tmp_path):
    sdist = _fake_sdist(tmp_path)
    items = vader_gold.load_rated(tmp_path)  # a folder holding the sdist is found
    assert len(items) == 40 + 120 + 120 and {it.domain for it in items} == set(vader_gold.DOMAINS)
    assert all("leak" not in it.text for it in items)
    assert items[0].text.endswith("& more")  # HTML entities read as a person would
    splits = vader_gold.split_rated(items)
    assert splits == vader_gold.load_splits(sdist)  # seeded: the same every time
    sizes = {name: len(part) for name, part in splits.items()}
    assert sum(sizes.values()) == len(items) and 0.5 < sizes["train"] / len(items) < 0.7
    documents = {name: {it.document for it in part} for name, part in splits.items()}
    assert not documents["train"] & documents["test"] and not documents["train"] & documents["validation"]
    assert not documents["validation"] & documents["test"]
    for name, part in splits.items():  # every band in every split
        assert set(np.bincount([it.band for it in part], minlength=3).nonzero()[0]) == {0, 1, 2}, name


def test_labels_soft_polar_and_three_way(tmp_path):
    _fake_sdist(tmp_path)
    items = vader_gold.load_rated(tmp_path / vader_gold.SDIST_NAME)
    neutral = [it for it in items if all(r == 0 for r in it.ratings)]
    assert neutral and all(it.p_positive == 0.5 for it in neutral)
    polar = vader_gold.polar(items, "amazon")
    chosen = [it for it in items if it.domain == "amazon" and abs(it.mean) > 1]
    assert polar.labels == [int(it.mean > 0) for it in chosen] and set(polar.sources) == {"vader_amazon"}
    texts, y = vader_gold.three_way(items, "nyt")
    assert len(texts) == 120 and set(y) <= {0, 1, 2}
    nyt = [i for i in items if i.domain == "nyt"]
    assert all((label == 1) == (abs(it.mean) <= 1) for it, label in zip(nyt, y, strict=False))
    texts, soft = vader_gold.soft_training_set(items)
    assert all(0 <= p <= 1 for p in soft) and len(texts) == len(items)


def test_the_movie_snippets_are_never_read_and_a_missing_sdist_says_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="Rotten Tomatoes"):
        vader_gold._lines(None, "movieReviewSnippets_GroundTruth.txt")
    monkeypatch.delenv("SENTIEDGE_VADER_SDIST", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(vader_gold, "__file__", str(tmp_path / "models" / "vader_gold.py"))
    with pytest.raises(vader_gold.MissingSource, match="pip download --no-deps --no-binary :all: vaderSentiment"):
        vader_gold.find_sdist()


def test_the_vader_evaluation_reads_binary_and_three_way_figures_from_results(tmp_path):
    from types import SimpleNamespace

    from models.evaluate import three_way_report, vader_figures

    assert three_way_report(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]))["accuracy"] == 0.75
    _fake_sdist(tmp_path)
    items = [it for it in vader_gold.load_rated(tmp_path) if it.domain == "tweets"]
    perfect = [SimpleNamespace(score=float(np.clip(it.mean / 4, -1, 1)), stage="fast",
                               label="positive" if it.mean > 0 else "negative") for it in items]
    figures = vader_figures({"tweets": perfect}, {"tweets": items})["tweets"]
    assert figures["binary"]["balanced_accuracy"] == 1.0 and figures["binary"]["escalation_rate"] == 0.0
    # no neutral label: the three-way view comes from the best cut on |score| (here a perfect one)
    assert figures["three_way"]["macro_f1"] == 1.0 and figures["three_way"]["neutral_cut"] is not None
