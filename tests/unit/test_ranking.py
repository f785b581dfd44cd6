from edge_node.personalization.ranking import Candidate, Weights, rank

W = Weights(personal=1.0, cohort=0.5, popularity=0.3)


def explain(name, display, score):
    return f"personal:{display}:{'+' if score > 0 else '-'}"


def run(candidates, personal=None, cohort=None, limit=None, slots=0, per_category=3, seed="u1"):
    return rank(candidates, personal=personal or {}, cohort=cohort or {}, weights=W, explain_personal=explain,
                cohort_name="eu/mobile/evening", limit=limit or len(candidates), exploration_slots=slots,
                max_per_category=per_category, seed=seed)


def ids(items):
    return [i.id for i in items]


def test_personal_affinity_beats_popularity_and_dislikes_sink():
    cands = [Candidate(id="pop", category="toys", popularity=1000), Candidate(id="liked", category="skincare"),
             Candidate(id="disliked", category="garden", popularity=1000)]
    items = run(cands, personal={"skincare": 1.5, "garden": -1.0})
    assert ids(items) == ["liked", "pop", "disliked"]
    assert items[0].reason == "personal:skincare:+"
    assert items[1].reason == "popular right now"
    assert items[2].reason == "personal:garden:-"
    assert [i.rank for i in items] == [1, 2, 3]


def test_a_parent_category_lifts_its_siblings_at_half_strength():
    cands = [Candidate(id="makeup", category="Beauty/Makeup"), Candidate(id="toy", category="toys")]
    items = run(cands, personal={"beauty/skincare": 2.0})
    assert ids(items) == ["makeup", "toy"]
    assert 0 < items[0].signals.personal < 2.0


def test_cohort_signal_is_used_and_named_without_a_profile():
    items = run([Candidate(id="a", category="shoes"), Candidate(id="b", category="hats")], cohort={"hats": 1.0})
    assert ids(items) == ["b", "a"]
    assert "eu/mobile/evening" in items[0].reason


def test_diversity_limit_keeps_one_category_from_filling_the_top():
    cands = [Candidate(id=f"s{i}", category="skincare", popularity=100 - i) for i in range(5)]
    cands.append(Candidate(id="book", category="books", popularity=1))
    items = run(cands, personal={"skincare": 2.0}, limit=3, per_category=2)
    assert ids(items)[:3] == ["s0", "s1", "book"]
    assert "diversity limit 2" in items[3].reason


def test_exploration_slots_are_stable_per_seed_and_skip_dislikes():
    cands = [Candidate(id=f"i{i}", category=f"c{i}", popularity=50 - i) for i in range(20)]
    cands.append(Candidate(id="hated", category="hated"))
    personal = {"hated": -2.0}
    a = run(cands, personal=personal, limit=5, slots=2, seed="user-1")
    b = run(cands, personal=personal, limit=5, slots=2, seed="user-1")
    assert ids(a) == ids(b)
    explored = [i for i in a[:5] if i.exploration]
    assert len(explored) == 2 and all(i.id not in {"i0", "i1", "i2"} for i in explored)
    assert all(i.reason.startswith("exploring") for i in explored)
    assert not any(i.exploration for i in a[5:])
    assert "hated" not in {i.id for i in explored}
    assert sorted(ids(a)) == sorted(c.id for c in cands)
    seeds = {tuple(ids(run(cands, personal=personal, limit=5, slots=2, seed=f"user-{n}"))[3:5]) for n in range(8)}
    assert len(seeds) > 1


def test_no_signal_at_all_says_so():
    items = run([Candidate(id="a", category="x"), Candidate(id="b", category="y")])
    assert all(i.reason == "no signal yet: ordered by popularity" for i in items)
