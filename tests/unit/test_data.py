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
