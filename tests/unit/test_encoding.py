import numpy as np
import pytest

from sentiedge_core.encoding import FastEncoder, WindowEncoder, normalize


def test_normalize_strips_html_breaks_and_collapses_space():
    assert normalize("Great<br /><br />film.\n\n  Loved  it") == "Great film. Loved it"


@pytest.fixture(scope="module")
def fast(bundle_dir):
    return FastEncoder(bundle_dir / "fast-tokenizer.json", buckets=1 << 18, max_tokens=2048)


@pytest.fixture(scope="module")
def windows(bundle_dir):
    return WindowEncoder(bundle_dir / "transformer-tokenizer.json", max_len=32, max_windows=3)


def test_fast_features_are_unigrams_then_hashed_bigrams_in_range(fast):
    (feats,) = fast.features(["a truly wonderful film"])
    n = (feats.size + 1) // 2
    assert np.all(feats[:n] < fast.vocab_size)
    assert np.all((feats[n:] >= fast.vocab_size) & (feats[n:] < fast.num_features))
    # Same text, same features: the edge and the trainer must agree exactly.
    assert np.array_equal(feats, fast.features(["a truly wonderful film"])[0])


def test_fast_bigrams_depend_on_word_order(fast):
    a, b = fast.features(["not good at all", "good not all at"])
    assert sorted(a[:4]) == sorted(b[:4])
    assert set(a[4:]) != set(b[4:])


def test_fast_batch_pads_with_zero_and_counts_real_features(fast):
    batch = fast.batch(["good", "a much longer text than the first one", ""])
    assert batch.ids.shape[0] == 3
    assert batch.counts[0, 0] == np.count_nonzero(batch.ids[0])
    assert batch.counts[2, 0] == 1 and not batch.ids[2].any()  # empty text: no features, no division by zero


def test_short_text_is_one_window_with_special_tokens(windows):
    batch = windows.batch(["short and sweet"])
    assert batch.input_ids.shape[0] == 1
    assert batch.input_ids[0, 0] == windows.cls_id
    assert windows.sep_id in batch.input_ids[0]


def test_long_text_windows_cover_start_and_end_and_respect_max(windows):
    words = [f"w{i}" for i in range(400)]
    ids = windows.token_ids([" ".join(words)])[0]
    spans = windows.windows_of(ids)
    assert len(spans) == 3
    assert spans[0][1:-1] == ids[:30]
    assert spans[-1][1:-1] == ids[-30:]
    assert all(len(s) <= 32 for s in spans)


def test_mean_over_owner_averages_each_texts_windows(windows):
    batch = windows.batch(["tiny", " ".join(["long"] * 200)])
    values = np.arange(batch.input_ids.shape[0] * 2, dtype=np.float32).reshape(-1, 2)
    per_text = batch.mean_over_owner(values)
    assert per_text.shape == (2, 2)
    assert np.allclose(per_text[1], values[batch.owners == 1].mean(0))
