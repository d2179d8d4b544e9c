"""The OpenAPI document holds: schemathesis drives the live app (HTTP on 127.0.0.1) with data
generated from the document, valid and invalid, and every answer must match it, never a 5xx."""

import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from tests import factories

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def live_server(app):
    """The portal served over real HTTP on a free local port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def test_the_document_is_openapi_3_1_generated_from_the_routes(app):
    document = app.test_client().get("/api/v1/openapi.json").json
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}/credit",
        "/api/v1/credit/charges",
        "/api/v1/credit/charges/{charge_id}/cancel",
    }
    charge = document["paths"]["/api/v1/credit/charges"]["post"]
    assert {"201", "401", "403", "409", "422", "429"} <= set(charge["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in charge["parameters"])
    page = app.test_client().get("/api/v1/docs")
    assert page.status_code == 200 and "POST /api/v1/credit/charges" in page.text
    assert "insufficient_credit" in page.text


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_keeps_its_contract(app, org_a, live_server, mode):
    key = factories.api_key_create(org_a.organization_id)
    customer = factories.customer_create(org_a.organization_id)
    factories.credit_account_create(org_a.organization_id, customer.customer_id)
    schema = schemathesis.openapi.from_url(f"{live_server}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 4
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def keeps_contract(case):
            case.call_and_validate(base_url=live_server, headers=headers, checks=CHECKS)

        keeps_contract()
