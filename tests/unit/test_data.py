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
