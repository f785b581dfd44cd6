"""The OpenAPI is the contract: schemathesis generates requests from the served edge's own
schema (bounded per operation) and checks every answer against it: no 5xx, only documented
status codes, content types and bodies (errors included) that match their schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]




def _spec() -> dict:
    """The schema the edge serves at /schema/openapi.json (built from the same app factory; the
    served one is compared with it below), loaded at collection time for parametrization."""
    import json
    import tempfile

    import msgspec

    from edge_node.config import load_settings
    from edge_node.http.app import create_app

    spec = create_app(load_settings({"EDGE_DATA_DIR": tempfile.mkdtemp()})).openapi_schema.to_schema()
    return json.loads(msgspec.json.encode(spec))


SPEC = _spec()
schema = schemathesis.openapi.from_dict(SPEC)


def test_the_served_schema_is_the_one_tested(served_edge):
    from tests.e2e.http import call

    base, _, _ = served_edge
    assert call(base, "GET", "/schema/openapi.json", headers={})[1] == SPEC


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_answer_matches_the_documented_contract(case, served_edge):
    _, app, _ = served_edge
    # The app's backend (a server key with every scope): requests reach the handlers, not only the gate.
    case.call_and_validate(base_url=served_edge[0], headers=app.server(), checks=CHECKS)


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_refusals_match_the_documented_contract(case, served_edge):
    _, app, _ = served_edge
    case.call_and_validate(base_url=served_edge[0], headers=app.anonymous(), checks=CHECKS)
