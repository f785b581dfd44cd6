"""Drift: in-domain traffic is not flagged; a shift in what users write is, on the edge's
metrics and at the control plane, per node and overall."""

import pytest

from models.data import load_corpus
from tests.e2e.cluster import cp_env, edge_env, eventually, metric, operator
from tests.e2e.http import call

pytestmark = pytest.mark.e2e


def test_a_shift_in_the_input_distribution_is_flagged(spawn, bundle_dir, tmp_path):
    _, cp = spawn("control-plane", "serve", env=cp_env())
    _, edge = spawn("edge-node", "serve", "--model-dir", str(bundle_dir), env=edge_env(cp, "edge-d", tmp_path))
    test = load_corpus().test
    in_domain = test.texts[:: max(1, len(test.texts) // 300)][:300]
    for start in range(0, len(in_domain), 30):
        assert call(edge, "POST", "/v1/sentiment", {"texts": in_domain[start:start + 30]})[0] == 200
    assert metric(edge, "sentiedge_drift") == 0.0
    assert metric(edge, 'sentiedge_drift_psi{what="labels"}') < 0.1

    angry = [f"Order {i}: this is awful, it broke immediately and support ignored me." for i in range(600)]
    for start in range(0, len(angry), 50):
        call(edge, "POST", "/v1/sentiment", {"texts": angry[start:start + 50]})
    assert metric(edge, "sentiedge_drift") == 1.0
    assert metric(edge, 'sentiedge_drift_psi{what="labels"}') > 0.2
    rows = eventually(lambda: (r := operator(cp, "models", "drift").get("rows")) and len(r) == 2
                      and all(x["drift"] for x in r) and r, what="drift flagged at the control plane")
    assert {r["scope"] for r in rows} == {"edge-d", "all sentiedge-sentiment 1.1.1"}
