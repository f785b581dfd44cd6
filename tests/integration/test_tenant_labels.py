"""Sampled predictions belong to the tenant whose user wrote them: another tenant's server key
can neither label one nor learn that it exists."""


from litestar.testing import TestClient

from edge_node.config import load_settings
from edge_node.http.app import create_app
from tests.credentials import two_tenant_apps_file

SCOPES = ["events:write", "consent:write", "labels:write", "users:read"]


def apps_file(tmp_path):
    return two_tenant_apps_file(tmp_path, SCOPES)


def test_another_tenants_server_key_cannot_label_a_sample(model, tmp_path):
    settings = load_settings({"EDGE_DATA_DIR": str(tmp_path / "edge"), "EDGE_APPS_FILE": str(apps_file(tmp_path)),
                              "EDGE_LABEL_SAMPLE_RATE": "1", "EDGE_RATE_LIMIT_PER_ADDRESS": "0"})
    shop = {"x-client-key": "ck_shop", "authorization": "Bearer sk_shop_backend"}
    clinic = {"x-client-key": "ck_clinic", "authorization": "Bearer sk_clinic_backend"}
    with TestClient(create_app(settings, model=model)) as client:
        assert client.put("/v1/users/ann/consent", headers=shop, json={
            "purposes": {"sentiment": True, "personalization": True}, "policy_version": "v1"}).status_code == 200
        r = client.post("/v1/users/ann/events", headers=shop, json={"events": [
            {"type": "review", "item_id": "i", "category": "c", "text": "The box arrived crushed."}]})
        assert r.status_code == 200, r.text
        sample_id = r.json()["results"][0]["sentiment"]["sample_id"]
        assert sample_id
        refused = client.post("/v1/labels", headers=clinic, json={"sample_id": sample_id, "label": "positive"})
        unknown = client.post("/v1/labels", headers=clinic, json={"sample_id": "smp-" + "0" * 32, "label": "positive"})
        assert refused.status_code == unknown.status_code == 404  # the same answer as for no sample at all
        assert refused.json()["message"].replace(sample_id, "X") == unknown.json()["message"].replace(
            "smp-" + "0" * 32, "X")
        mine = client.post("/v1/labels", headers=shop, json={"sample_id": sample_id, "label": "negative"})
        assert mine.status_code == 200 and mine.json()["agreed"] in (True, False)
