import numpy as np

from sentiedge_core import cascade
from sentiedge_core.bundle import CascadeSpec, RouteSpec

SPEC = CascadeSpec(long_text_tokens=100,
                   short=RouteSpec(temperature=1.0, threshold=0.9, stacker=[0.0, 1.0, 0.0]),
                   long=RouteSpec(temperature=1.0, threshold=0.7, stacker=[1.0, 0.0, 0.0]))


def test_confident_fast_answers_stand_and_unsure_ones_escalate():
    margins = np.array([4.0, 0.5, -4.0, 0.5])
    tokens = np.array([10, 10, 10, 500])
    escalated = cascade.escalate(margins, tokens, SPEC)
    # sigmoid(0.5)=0.62: below the short route's 0.9 and the long route's 0.7.
    assert escalated.tolist() == [False, True, False, True]
    assert not cascade.escalate(np.array([1.0]), np.array([500]), SPEC)[0]  # 0.73 >= 0.7 on the long route


def test_combine_uses_the_routes_stacker_only_for_escalated_texts():
    fast = np.array([4.0, 0.5, 0.5])
    transformer = np.array([-9.0, -3.0, -3.0])
    tokens = np.array([10, 10, 500])
    p, escalated = cascade.combine(fast, transformer, tokens, SPEC)
    assert escalated.tolist() == [False, True, True]
    assert p[0] > 0.98  # fast answer, transformer ignored
    assert p[1] < 0.1  # short route trusts the transformer
    assert p[2] > 0.5  # long route's stacker here trusts the fast stage


def test_each_route_has_its_own_temperature():
    spec = CascadeSpec(long_text_tokens=100, short=RouteSpec(temperature=1.0, threshold=0.9, stacker=[0, 0, 0]),
                       long=RouteSpec(temperature=4.0, threshold=0.9, stacker=[0, 0, 0]))
    p = cascade.route_fast_probability(np.array([2.0, 2.0]), np.array([10, 500]), spec)
    assert p[0] == cascade.sigmoid(2.0) and p[1] == cascade.sigmoid(0.5)
    # The same margin is confident on the short route and escalates on the long one.
    assert cascade.escalate(np.array([3.0, 3.0]), np.array([10, 500]), spec).tolist() == [False, True]


def test_thin_evidence_always_escalates_on_the_short_route():
    import msgspec

    spec = msgspec.structs.replace(SPEC, thin_tokens=10, negation_cues=["not", "n't", "no"])
    confident = np.array([9.0, 9.0, 9.0, 9.0])
    tokens = np.array([4, 40, 40, 500])  # short and few; short; short; long
    negated = np.array([False, True, False, True])
    assert cascade.escalate(confident, tokens, spec, negated).tolist() == [True, True, False, False]
    assert not cascade.escalate(confident, tokens, SPEC, negated).any()  # bundles before 1.2: no rule


def test_negation_cues_match_whole_words_and_contractions():
    pattern = cascade.negation_pattern(["not", "no", "nothing", "n't"])
    hits = [t for t in ["not bad at all", "NO complaints", "it wasn't good", "nothing to add", "a knot",
                        "see the notes", "nobody", "I can't"] if pattern.search(t)]
    assert hits == ["not bad at all", "NO complaints", "it wasn't good", "nothing to add", "I can't"]
    assert cascade.negation_pattern([]) is None


def test_the_fit_escalates_thin_texts_and_fits_their_stacker():
    from models.cascade_fit import Margins, fit_cascade

    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    fast = np.where(y == 1, 3.0, -3.0) + rng.normal(0, 1, n)
    transformer = np.where(y == 1, 2.0, -2.0) + rng.normal(0, 1, n)
    tokens = rng.integers(3, 300, n)
    negated = rng.random(n) < 0.2
    m = Margins(fast, tokens, transformer, y, np.array(["s"] * n), negated)
    spec, _ = fit_cascade(m, 126)
    assert spec.thin_tokens == 10 and "not" in spec.negation_cues
    thin = cascade.thin(tokens, spec, negated)
    assert thin.any() and cascade.escalate(fast, tokens, spec, negated)[thin].all()


def test_the_fast_stage_is_calibrated_per_length_bucket():
    import msgspec

    spec = msgspec.structs.replace(SPEC, length_buckets=[10, 50], bucket_temperatures=[4.0, 2.0])
    tokens = np.array([3, 10, 11, 50, 51, 500])
    assert cascade.fast_temperatures(tokens, spec).tolist() == [4.0, 4.0, 2.0, 2.0, 1.0, 1.0]  # past them: the route's
    assert cascade.fast_temperatures(tokens, SPEC).tolist() == [1.0] * 6
    p = cascade.route_fast_probability(np.array([4.0, 4.0]), np.array([5, 30]), spec)
    assert p[0] < p[1]  # the same margin means less on a shorter text


def test_the_thin_stacker_answers_only_the_shortest_escalated_texts():
    import msgspec

    spec = msgspec.structs.replace(SPEC, thin_tokens=10, thin_stacker=[0.0, -1.0, 0.0])  # reads the margin backwards
    fast = np.zeros(4)  # unsure: every text escalates
    transformer = np.full(4, 3.0)
    tokens = np.array([4, 10, 11, 500])
    p, escalated = cascade.combine(fast, transformer, tokens, spec)
    assert escalated.all()
    assert p[0] < 0.1 and p[1] < 0.1  # at most thin_tokens: the thin stacker
    assert p[2] > 0.9  # longer short-route text: the route's own stacker
    assert p[3] == cascade.sigmoid(0.0)  # long route untouched
    assert cascade.thin_stacked(tokens, spec).tolist() == [True, True, False, False]
    # Without one (bundles before 1.4.1) the short route's stacker answers them all.
    plain = msgspec.structs.replace(spec, thin_stacker=[])
    assert (cascade.combine(fast, transformer, tokens, plain)[0][:3] > 0.9).all()
    assert not cascade.thin_stacked(tokens, plain).any()


def test_a_thin_stacker_must_be_three_finite_numbers():
    import msgspec
    import pytest

    raw = msgspec.json.decode(msgspec.json.encode(SPEC))
    for bad in ([1.0, 2.0], [1.0, 2.0, 3.0, 4.0], ["a", 1, 2]):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(raw | {"thin_stacker": bad}, CascadeSpec)
    with pytest.raises(msgspec.ValidationError, match="three finite numbers"):
        msgspec.convert(raw | {"thin_stacker": [1.0, float("inf"), 0.0]}, CascadeSpec)
    assert msgspec.convert(raw | {"thin_stacker": [0.1, 0.9, -0.2]}, CascadeSpec).thin_stacker == [0.1, 0.9, -0.2]


def test_texts_where_the_fast_stage_is_weak_raise_the_short_routes_threshold():
    """Fitted on movie-like texts alone the fast stage answers most short texts; with rated texts
    of a domain where its confident answers are often wrong beside them, the route escalates more."""
    from models.cascade_fit import Margins, fit_cascade

    rng = np.random.default_rng(1)

    def part(n, fast_noise, flip, source, longest=100, transformer_margin=3.0):
        y = rng.integers(0, 2, n)
        sign = np.where(y == 1, 1.0, -1.0)
        fast = sign * np.where(rng.random(n) < flip, -3.0, 3.0) + rng.normal(0, fast_noise, n)
        transformer = sign * transformer_margin + rng.normal(0, 1, n)
        return Margins(fast, rng.integers(12, longest, n), transformer, y, np.array([source] * n), np.zeros(n, bool))

    movies = part(1200, 1.0, 0.01, "movies", longest=400, transformer_margin=1.0)
    tweets = part(1200, 1.0, 0.25, "vader_tweets")
    alone, _ = fit_cascade(movies, 126)
    mixed, info = fit_cascade(movies, 126, short_extra=tweets)
    assert mixed.short.threshold > alone.short.threshold
    short_movies = int((movies.tokens <= 126).sum())
    assert info["short"]["n"] == short_movies + 1200 and mixed.long == alone.long
