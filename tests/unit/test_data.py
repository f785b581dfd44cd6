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
    by_text = dict(zip(lexicon.texts, lexicon.labels))
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
