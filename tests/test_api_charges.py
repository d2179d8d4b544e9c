"""The checkout API charges and cancels through the credit services, once per Idempotency-Key."""

import uuid

import pytest

from portal.credit.models import CreditAccount
from portal.extensions import db
from tests import factories


@pytest.fixture
def api(app):
    return app.test_client()


@pytest.fixture
def key(org_a):
    return factories.api_key_create(org_a.organization_id)


def _headers(key, idempotency_key=None):
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def _charge_body(customer, amount="180.00", order_id=None, order_number="PED-1001"):
    return {
        "customer_id": str(customer.customer_id),
        "order_id": str(order_id or uuid.uuid4()),
        "order_number": order_number,
        "amount": amount,
    }


@pytest.fixture
def customer_with_credit(org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    return customer, account


def _account(org, account_id):
    with factories.scoped(org.organization_id):
        return db.session.get(CreditAccount, (org.organization_id, account_id))


def test_a_charge_is_created_and_its_credit_read_back(api, key, org_a, customer_with_credit):
    customer, account = customer_with_credit
    response = api.post(
        "/api/v1/credit/charges", json=_charge_body(customer), headers=_headers(key, "k-1")
    )
    assert response.status_code == 201, response.text
    charge = response.json
    assert charge["amount"] == "180.00" and charge["order_number"] == "PED-1001"
    assert charge["status"] == "pending"
    assert charge["credit"]["credit_available"] == "820.00"
    credit = api.get(f"/api/v1/customers/{customer.customer_id}/credit", headers=_headers(key))
    assert credit.status_code == 200
    assert credit.json["credit_used"] == "180.00" and credit.json["status"] == "approved"
    assert credit.json["overdue_hold"] is False
    entries = factories.audit_entries(org_a.organization_id, account.credit_account_id)
    assert entries[-1].action == "credit.usage_charged"
    assert entries[-1].actor_label == "api:Checkout"
    assert entries[-1].after["order_number"] == "PED-1001"
