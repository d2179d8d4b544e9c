"""The checkout API charges and cancels through the credit services, once per Idempotency-Key."""

import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.api.models import IdempotencyRecord
from portal.credit.models import CreditAccount, CreditUsage
from portal.credit.services import usage_charge
from portal.events.ingest import inbox_write, validate_envelope
from portal.events.jobs import process_events
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


def _account(org, account_id) -> CreditAccount:
    """The account as stored now (detached)."""
    with factories.scoped(org.organization_id):
        account = db.session.scalar(
            sa.select(CreditAccount).where(CreditAccount.credit_account_id == account_id)
        )
        db.session.expunge(account)
        return account


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


def _used(org, account_id) -> Decimal:
    return _account(org, account_id).credit_used


def test_the_same_key_and_body_get_the_first_answer(api, key, org_a, customer_with_credit):
    customer, account = customer_with_credit
    body = _charge_body(customer)
    first = api.post("/api/v1/credit/charges", json=body, headers=_headers(key, "same"))
    again = api.post("/api/v1/credit/charges", json=body, headers=_headers(key, "same"))
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _used(org_a, account.credit_account_id) == Decimal("180.00")
    other = api.post(
        "/api/v1/credit/charges",
        json=body | {"amount": "181.00"},
        headers=_headers(key, "same"),
    )
    assert other.status_code == 409 and other.json["code"] == "idempotency_key_reused"
    assert _used(org_a, account.credit_account_id) == Decimal("180.00")


def test_a_refusal_is_the_first_answer_too(api, key, org_a, customer_with_credit):
    customer, _ = customer_with_credit
    body = _charge_body(customer, amount="1000.01")
    first = api.post("/api/v1/credit/charges", json=body, headers=_headers(key, "too-much"))
    assert first.status_code == 422 and first.mimetype == "application/problem+json"
    assert first.json["code"] == "insufficient_credit"
    assert "disponible" in first.json["detail"]
    again = api.post("/api/v1/credit/charges", json=body, headers=_headers(key, "too-much"))
    assert again.json == first.json and again.status_code == 422
    with factories.scoped(org_a.organization_id):
        record = db.session.scalar(sa.select(IdempotencyRecord))
        assert record.order_number == "PED-1001" and record.status_code == 422
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditUsage)) == 0


def test_twenty_identical_requests_at_once_make_one_charge(app, key, org_a, customer_with_credit):
    customer, account = customer_with_credit
    body = _charge_body(customer, amount="50.00")
    outcomes = _at_once(
        [
            lambda: app.test_client().post(
                "/api/v1/credit/charges", json=body, headers=_headers(key, "burst")
            )
            for _ in range(20)
        ]
    )
    assert {status for status, _ in outcomes} == {201}
    assert len({text for _, text in outcomes}) == 1
    assert _used(org_a, account.credit_account_id) == Decimal("50.00")
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditUsage)) == 1


def test_two_hundred_charges_across_twenty_accounts_never_exceed_a_limit(app, key, org_a):
    accounts = []
    for _ in range(20):
        customer = factories.customer_create(org_a.organization_id)
        account = factories.credit_account_create(
            org_a.organization_id, customer.customer_id, credit_limit=Decimal("100.00")
        )
        accounts.append((customer, account))
    posts = []
    for index in range(200):
        customer, _ = accounts[index % 20]
        body = _charge_body(customer, amount="15.00")
        posts.append(
            lambda body=body, index=index: app.test_client().post(
                "/api/v1/credit/charges", json=body, headers=_headers(key, f"many-{index}")
            )
        )
    outcomes = _at_once(posts)
    statuses = [status for status, _ in outcomes]
    assert set(statuses) <= {201, 422}, [text for status, text in outcomes if status >= 500][:1]
    assert statuses.count(201) == 20 * 6  # six charges of 15.00 fit a limit of 100.00
    with factories.scoped(org_a.organization_id):
        for _, account in accounts:
            stored = db.session.scalar(
                sa.select(CreditAccount).where(
                    CreditAccount.credit_account_id == account.credit_account_id
                )
            )
            charged = db.session.scalar(
                sa.select(sa.func.sum(CreditUsage.amount)).where(
                    CreditUsage.credit_account_id == account.credit_account_id,
                    CreditUsage.status == "pending",
                )
            )
            assert stored.credit_used == charged == Decimal("90.00")
            assert stored.credit_used <= stored.credit_limit


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"account": {"status": "suspended"}}, "account_suspended"),
        ({"account": {"status": "pending"}}, "account_not_approved"),
        ({"customer": {"status": "blocked"}}, "customer_blocked"),
        ({"overdue": True}, "overdue_hold"),
        ({"no_account": True}, "account_not_approved"),
    ],
)
def test_refusals_have_stable_codes(api, key, org_a, setup, code):
    customer = factories.customer_create(org_a.organization_id, **setup.get("customer", {}))
    if not setup.get("no_account"):
        account = factories.credit_account_create(
            org_a.organization_id, customer.customer_id, **setup.get("account", {})
        )
    if setup.get("overdue"):
        with factories.scoped(org_a.organization_id):
            usage, _ = usage_charge(
                account_id=account.credit_account_id,
                order_id=uuid.uuid4(),
                amount=Decimal("10.00"),
                actor=None,
            )
            db.session.execute(
                sa.update(CreditUsage)
                .where(CreditUsage.usage_id == usage.usage_id)
                .values(status="overdue")
            )
            db.session.commit()
    response = api.post(
        "/api/v1/credit/charges", json=_charge_body(customer), headers=_headers(key, code)
    )
    assert response.status_code == 422, response.text
    assert response.json["code"] == code and response.json["detail"]


def test_invalid_bodies_are_refused_with_spanish_field_errors(api, key, customer_with_credit):
    customer, _ = customer_with_credit
    missing_key = api.post(
        "/api/v1/credit/charges", json=_charge_body(customer), headers=_headers(key)
    )
    assert missing_key.status_code == 422 and missing_key.json["code"] == "idempotency_key_required"
    for body, field in [
        (_charge_body(customer, amount="0.00"), "amount"),
        (_charge_body(customer, amount="12.345"), "amount"),
        (_charge_body(customer, order_number=""), "order_number"),
        (_charge_body(customer) | {"customer_id": "nope"}, "customer_id"),
        (_charge_body(customer) | {"extra": 1}, "extra"),
    ]:
        response = api.post("/api/v1/credit/charges", json=body, headers=_headers(key, "bad"))
        assert response.status_code == 422, body
        assert response.json["code"] == "invalid_request" and field in response.json["errors"]
    not_json = api.post(
        "/api/v1/credit/charges",
        data="[1]",
        headers=_headers(key, "bad") | {"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and not_json.json["code"] == "invalid_json"


def test_a_cancelled_charge_gives_the_credit_back(api, key, org_a, customer_with_credit):
    customer, account = customer_with_credit
    charge = api.post(
        "/api/v1/credit/charges", json=_charge_body(customer), headers=_headers(key, "c-1")
    ).json
    url = f"/api/v1/credit/charges/{charge['charge_id']}/cancel"
    cancelled = api.post(url, headers=_headers(key))
    assert cancelled.status_code == 200
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["credit"]["credit_used"] == "0.00"
    assert cancelled.json["order_number"] == "PED-1001"
    assert api.post(url, headers=_headers(key)).status_code == 200  # harmless when repeated
    assert _used(org_a, account.credit_account_id) == Decimal("0.00")
    entries = factories.audit_entries(org_a.organization_id, account.credit_account_id)
    assert [e.action for e in entries][-1] == "credit.usage_cancelled"
    assert entries[-1].actor_label == "api:Checkout"
    unknown = api.post(f"/api/v1/credit/charges/{uuid.uuid4()}/cancel", headers=_headers(key))
    assert unknown.status_code == 404 and unknown.json["code"] == "charge_not_found"


def test_an_order_cancelled_event_releases_the_orders_charge(
    app, api, key, org_a, customer_with_credit
):

    customer, account = customer_with_credit
    body = _charge_body(customer)
    api.post("/api/v1/credit/charges", json=body, headers=_headers(key, "ev"))
    assert _used(org_a, account.credit_account_id) == Decimal("180.00")
    envelope = validate_envelope(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "orders.order.cancelled",
            "occurred_at": datetime.now(UTC).isoformat(),
            "organization_id": str(org_a.organization_id),
            "data": {
                "order_id": body["order_id"],
                "customer_id": body["customer_id"],
                "total": "180.00",
                "completed_at": datetime.now(UTC).isoformat(),
            },
        },
        0,
    )
    with factories.scoped(org_a.organization_id):
        inbox_write([envelope])
        db.session.commit()
        assert process_events([str(envelope.event_id)]) == {"processed": 1, "dead": 0}
        db.session.commit()
    assert _used(org_a, account.credit_account_id) == Decimal("0.00")
    with factories.scoped(org_a.organization_id):
        usage = db.session.scalar(sa.select(CreditUsage))
        assert usage.status == "cancelled"


def _at_once(posts) -> list:
    """Run the callables together (a barrier releases them at once); a crash counts as a 500."""
    barrier = threading.Barrier(len(posts))
    outcomes = [None] * len(posts)

    def attempt(index, post):
        barrier.wait(timeout=60)
        try:
            response = post()
            outcomes[index] = (response.status_code, response.text)
        except Exception as error:
            outcomes[index] = (500, repr(error))

    threads = [threading.Thread(target=attempt, args=(i, post)) for i, post in enumerate(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes
