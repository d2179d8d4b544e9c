"""The credit desk through the web: outcomes requesters see, one Spanish vocabulary, the queue."""

import re
import uuid
from decimal import Decimal

import pytest

from portal import clock
from portal.credit.services import account_for_customer, credit_request_pending
from portal.extensions import db
from tests import factories

HTMX = {"HX-Request": "true"}


def _account(org, customer_id):
    with factories.scoped(org.organization_id):
        account = account_for_customer(customer_id)
        db.session.expunge(account)
        return account


def _pending_id(org, account_id):
    with factories.scoped(org.organization_id):
        return credit_request_pending(account_id).credit_request_id


def _request(client, customer, limit="1500.00", term="45"):
    client.get(f"/credit/request/{customer.customer_id}")
    data = {
        "requested_limit": limit,
        "requested_term_days": term,
        "request_notes": "Cliente frecuente desde 2019",
    }
    return client.post(f"/credit/request/{customer.customer_id}", data)


@pytest.fixture
def customer(org_a):
    return factories.customer_create(org_a.organization_id, first_name="Ana", last_name="Quintero")


def test_the_requester_sees_the_request_pending_then_rejected_with_who_when_and_why(
    login_as, org_a, customer
):
    staff = login_as("branch_staff")
    assert _request(staff, customer).status_code == 302
    card = staff.get(f"/customers/{customer.customer_id}").text
    assert "Pendiente" in card and "Solicitado: US$1,500.00 a 45 días" in card
    assert 'id="decisions-unseen"' not in card

    account = _account(org_a, customer.customer_id)
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    request_id = _pending_id(org_a, account.credit_account_id)
    rejected = approver.post(
        f"/credit/requests/{request_id}/reject",
        {"approval_notes": "Ingresos no verificables"},
        headers=HTMX,
    )
    assert rejected.status_code == 200

    card = staff.get(f"/customers/{customer.customer_id}").text
    assert "Rechazada" in card and "Cancelada" not in card
    assert "Ingresos no verificables" in card
    assert org_a.users["credit_approver"].full_name in card
    assert 'id="decisions-unseen" title="Decisiones nuevas">1<' in card
    account_page = staff.get(f"/credit/accounts/{account.credit_account_id}").text
    assert "Rechazada por" in account_page and "Ingresos no verificables" in account_page

    mine = staff.get("/credit/mine").text
    assert customer.full_name in mine and "Rechazada" in mine and "Nueva" in mine
    assert "Ingresos no verificables" in mine
    again = staff.get("/credit/mine").text
    assert "Nueva" not in again and 'id="decisions-unseen"' not in again
    [seen] = [
        entry
        for entry in factories.audit_entries(
            org_a.organization_id, org_a.users["branch_staff"].staff_user_id
        )
        if entry.action == "credit.decisions_seen"
    ]
    assert seen.after == {"requests": [str(request_id)]}


def test_another_requesters_decisions_are_not_in_my_list(login_as, org_a, customer):
    _request(login_as("branch_staff"), customer)
    mine = login_as("credit_staff").get("/credit/mine").text
    assert customer.full_name not in mine and "Aún no ha creado solicitudes" in mine


def test_approvers_without_requester_role_have_no_list(login_as):
    assert login_as("credit_approver").get("/credit/mine").status_code == 403


def test_reversed_payments_and_cancelled_charges_read_as_such_in_spanish(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Luz")
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    staff = login_as("credit_staff")
    staff.get(page)
    for amount in ("100.00", "30.00"):
        charged = staff.post(
            f"{page}/usages", {"order_id": str(uuid.uuid4()), "amount": amount}, headers=HTMX
        )
        assert charged.status_code == 200
    paid = staff.post(
        f"{page}/payments",
        {
            "amount": "50.00",
            "payment_method": "cash",
            "payment_reference": "REC-9",
            "payment_date": clock.today().isoformat(),
            "idempotency_key": str(uuid.uuid4()),
        },
        headers=HTMX,
    )
    assert paid.status_code == 200
    from portal.credit.models import CreditPayment, CreditUsage

    with factories.scoped(org_a.organization_id):
        payment_id = db.session.scalar(db.select(CreditPayment.payment_id))
        pending_usage = db.session.scalar(
            db.select(CreditUsage.usage_id).where(CreditUsage.amount == Decimal("30.00"))
        )
    approver = login_as("credit_approver")
    approver.get(page)
    reversed_ = approver.post(
        f"/credit/payments/{payment_id}/reverse",
        {"reversal_reason": "Billete falso"},
        headers=HTMX,
    )
    assert reversed_.status_code == 200 and "Pago de Luz" in reversed_.text
    assert 'id="credit-live"' in reversed_.text and 'hx-swap-oob="true"' in reversed_.text
    staff.get(page)
    assert staff.post(f"/credit/usages/{pending_usage}/cancel", headers=HTMX).status_code == 200

    ledger = staff.get(page).text
    assert "Pago revertido · Efectivo" in ledger and "Anulado" in ledger
    card = staff.get(f"/customers/{customer.customer_id}").text
    assert "Pago revertido · Efectivo" in card and "Cargo anulado · Anulado" in card
    statement = staff.get(f"{page}/statement").text
    assert "Pago Efectivo ref. REC-9 (revertido)" in statement and "(anulado)" in statement
    csv = staff.get(f"{page}/statement?format=csv").text
    assert "Pago Efectivo ref. REC-9 (revertido)" in csv
    for page_text in (ledger, card, statement, csv):
        visible = re.sub(r"<[^>]*>", " ", page_text)  # what staff read, not attribute values
        for code in ("cash", "cancelled", "pending", "paid", "reversed"):
            assert not re.search(rf"\b{code}\b", visible), code
