"""models.deep's pieces: the embedding cache, the cross-validated stacker, the figures."""

import numpy as np

from models import deep as fit
from sentiedge_core import cascade, deep


def test_the_cache_embeds_each_text_once_and_keeps_it_between_runs(tmp_path):
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([[len(t)] * deep.DIMENSION for t in texts], np.float32)

    cache = fit.EmbeddingCache(tmp_path, embed)
    first = cache(["a", "bb", "a"], "some")
    assert calls == [["a", "bb"]] and first[:, 0].tolist() == [1, 2, 1]
    again = fit.EmbeddingCache(tmp_path, embed)(["bb", "ccc"], "more")
    assert calls == [["a", "bb"], ["ccc"]] and again[:, 0].tolist() == [2, 3]


def test_cross_validation_rescores_only_the_chosen_rows_from_folds_that_held_them_out():
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    margin = (2 * y - 1) * 2.0 + rng.normal(0, 1, n)  # the teacher knows
    logit = rng.normal(0, 1, n)  # the cascade does not
    chosen = np.arange(n) % 2 == 0
    p = fit.cross_validated(logit, margin, y, y.astype(str), chosen)
    assert np.allclose(p[~chosen], cascade.sigmoid(logit[~chosen]))
    right = (p >= 0.5) == y
    assert right[chosen].mean() > 0.9 and right[~chosen].mean() < 0.65
    stacker = fit.fit_stacker(logit, margin, y)
    assert stacker[1] > 3 * abs(stacker[0])  # the weight goes to the margin that knows


def test_figures_are_balanced_on_vader_and_plain_accuracy_elsewhere():
    y = np.array([1, 1, 1, 0])
    p = np.array([0.9, 0.9, 0.9, 0.9])  # every text called positive
    assert fit.figure("vader-tweets", p, y) == 0.5 and fit.figure("customers", p, y) == 0.75
