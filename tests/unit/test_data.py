import numpy as np

from models.data import load_corpus


def test_splits_are_disjoint_stratified_and_fixed():
    corpus = load_corpus()
    assert len(corpus.train) == 24142
    for source, n_test in (("rotten_tomatoes", 1706), ("imdb", 5000)):
        test = corpus.test.only(source)
        # 20% per source, less the few verbatim duplicates of training reviews.
        assert n_test - 50 <= len(test) <= n_test and abs(test.y.mean() - 0.5) < 0.01
    train = set(corpus.train.texts)
    assert not train & set(corpus.test.texts)
    assert not train & set(corpus.validation.texts)
    assert load_corpus().test.texts[:50] == corpus.test.texts[:50]


def test_customer_validation_is_balanced_and_never_the_everyday_test_set():
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    with (root / "models" / "customer_validation.csv").open() as fh:
        validation = list(csv.DictReader(fh))
    with (root / "tests" / "data" / "everyday_short.csv").open() as fh:
        test = {row["text"].strip().lower() for row in csv.DictReader(fh)}
    assert len(validation) >= 150 and sum(r["label"] == "1" for r in validation) * 2 == len(validation)
    assert not {r["text"].strip().lower() for r in validation} & test


def test_the_lexicon_source_is_human_rated_words_labelled_by_sign_and_never_an_evaluation_text():
    import csv
    from pathlib import Path

    from models.data import load_lexicon

    lexicon = load_lexicon(1.5)
    by_text = dict(zip(lexicon.texts, lexicon.labels, strict=False))
    assert 3500 < len(lexicon) < 4500 and len(by_text) == len(lexicon)  # one entry per spelling
    assert by_text["wonderful"] == 1 and by_text["horrible"] == 0 and "okay" not in by_text  # |mean| < 1.5 left out
    assert all(any(c.isalpha() for c in t) for t in lexicon.texts) and set(lexicon.sources) == {"lexicon"}
    assert 0.35 < sum(lexicon.labels) / len(lexicon) < 0.6
    root = Path(__file__).resolve().parents[2]
    held_out = set()
    for path in (root / "tests" / "data" / "everyday_short.csv", root / "models" / "customer_validation.csv",
                 root / "models" / "out_of_domain.csv"):
        with path.open() as fh:
            held_out |= {row["text"].strip().lower() for row in csv.DictReader(fh)}
    assert not {t.lower() for t in lexicon.texts} & held_out


def test_customer_training_texts_are_balanced_and_far_from_every_evaluation_text():
    """models/customer_train.csv is training data: no text of it may be a near copy
    (word overlap 0.5 or more) of a validation, out-of-domain or everyday-floor text."""
    import csv
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def rows(path):
        with path.open() as fh:
            return list(csv.DictReader(fh))

    def words(text):
        return set(re.findall(r"[a-z']+", text.lower()))

    train = rows(root / "models" / "customer_train.csv")
    held_out = [words(r["text"]) for path in (root / "models" / "customer_validation.csv",
                                              root / "models" / "out_of_domain.csv",
                                              root / "tests" / "data" / "everyday_short.csv") for r in rows(path)]
    positives = sum(r["label"] == "1" for r in train)
    assert len(train) >= 400 and abs(positives - len(train) / 2) <= 5
    assert len({r["text"].lower() for r in train}) == len(train)
    assert len({r["domain"] for r in train}) >= 10
    near = [r["text"] for r in train
            if max(len(words(r["text"]) & h) / len(words(r["text"]) | h) for h in held_out) >= 0.5]
    assert near == []


def test_the_continued_training_mix_holds_no_validation_test_or_floor_text():
    import csv
    from pathlib import Path

    from models.continue_training import CONTINUE_RECIPE, training_mix

    root = Path(__file__).resolve().parents[2]
    corpus = load_corpus()
    texts, labels = training_mix(corpus, CONTINUE_RECIPE)
    with (root / "models" / "customer_train.csv").open() as fh:
        customers = list(csv.DictReader(fh))
    assert len(texts) == len(labels) == (len(corpus.train.only("rotten_tomatoes")) + CONTINUE_RECIPE["imdb_docs"]
                                         + len(customers) * CONTINUE_RECIPE["customer_repeats"])
    held_out = set(corpus.test.texts) | set(corpus.validation.texts)
    for path in ("models/customer_validation.csv", "models/out_of_domain.csv", "tests/data/everyday_short.csv"):
        with (root / path).open() as fh:
            held_out |= {r["text"] for r in csv.DictReader(fh)}
    assert not held_out & set(texts)
    assert abs(sum(labels) / len(labels) - 0.5) < 0.02


def test_weight_space_mixes_average_the_weights_and_keep_integer_buffers():
    from models.continue_training import weighted_mean

    a = {"w": np.array([1.0, 2.0], dtype=np.float32), "position_ids": np.array([0, 1, 2])}
    b = {"w": np.array([3.0, 6.0], dtype=np.float32), "position_ids": np.array([0, 1, 2])}
    c = {"w": np.array([5.0, 1.0], dtype=np.float32), "position_ids": np.array([0, 1, 2])}
    soup = weighted_mean([a, b, c], [1 / 3] * 3)
    np.testing.assert_allclose(soup["w"], [3.0, 3.0], rtol=1e-6)
    assert soup["position_ids"].dtype.kind == "i" and soup["position_ids"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(weighted_mean([a, b], [0.75, 0.25])["w"], [1.5, 3.0])  # WiSE-FT, alpha 0.25
    np.testing.assert_array_equal(weighted_mean([a, b], [1.0, 0.0])["w"], a["w"])


def test_review_sentences_come_from_imdb_training_reviews_with_their_label():
    from models.continue_training import review_sentences

    corpus = load_corpus()
    texts, labels = review_sentences(corpus)
    imdb = corpus.train.only("imdb")
    label_of = {}
    for review, label in zip(imdb.texts[:200], imdb.labels[:200], strict=False):
        for sentence in review.replace("<br />", " ").split(". "):
            label_of.setdefault(sentence.strip().rstrip("."), label)
    assert len(texts) == len(labels) > len(imdb)  # several sentences a review
    assert all(6 <= len(t.split()) <= 40 and "<br" not in t for t in texts[:5000])
    checked = [(t, y) for t, y in zip(texts, labels, strict=False) if t.rstrip(".") in label_of]
    assert len(checked) > 100 and all(label_of[t.rstrip(".")] == y for t, y in checked)
    assert not set(texts) & (set(corpus.validation.texts) | set(corpus.test.texts))
