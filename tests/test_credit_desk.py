"""The credit desk through the web: outcomes requesters see, one Spanish vocabulary, the queue."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.credit.models import CreditPayment, CreditRequest, CreditUsage
from portal.credit.selectors import ledger_outstanding
from portal.credit.services import (
    account_for_customer,
    account_get,
    credit_approve,
    credit_increase_request,
    credit_request,
    credit_request_pending,
    credit_write_off_request,
    usage_charge,
    usages_mark_overdue,
)
from portal.extensions import db
from portal.settings.services import organization_settings_get
from tests import factories
from tests.conftest import PortalClient

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
            f"{page}/usages",
            {
                "order_number": factories.order_number(org_a.organization_id, customer.customer_id),
                "amount": amount,
            },
            headers=HTMX,
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
    assert "Pago revertido Efectivo ref. REC-9" in statement and "(anulado)" in statement
    csv = staff.get(f"{page}/statement?format=csv").text
    assert "Pago revertido Efectivo ref. REC-9" in csv
    for page_text in (ledger, card, statement, csv):
        visible = re.sub(r"<[^>]*>", " ", page_text)  # what staff read, not attribute values
        for code in ("cash", "cancelled", "pending", "paid", "reversed"):
            assert not re.search(rf"\b{code}\b", visible), code


# --- the queue as a worklist ---------------------------------------------------------------


def _requests(org, *specs):
    """Pending new-line requests: (first name, limit, requester role) each; their ids."""
    ids = []
    for first_name, limit, role in specs:
        customer = factories.customer_create(org.organization_id, first_name=first_name)
        with factories.scoped(org.organization_id):
            request, _ = credit_request(
                customer_id=customer.customer_id,
                limit=Decimal(limit),
                term_days=30,
                notes="Compras de temporada",
                requester=org.users[role],
            )
            ids.append(request.credit_request_id)
    return ids


def test_the_queue_sorts_and_filters_and_reads_the_customers_history(login_as, org_a):
    _requests(org_a, ("Alba", "900", "branch_staff"), ("Berta", "4000", "credit_staff"))
    approver = login_as("credit_approver")
    page = approver.get("/credit/queue").text
    assert page.index("Alba") < page.index("Berta")  # oldest first
    by_amount = approver.get("/credit/queue?sort=amount").text
    assert by_amount.index("Berta") < by_amount.index("Alba")
    narrowed = approver.get("/credit/queue?min_amount=1000", headers=HTMX).text
    assert "Berta" in narrowed and "Alba" not in narrowed and "<html" not in narrowed
    staff_id = org_a.users["branch_staff"].staff_user_id
    mine = approver.get(f"/credit/queue?requester={staff_id}").text
    assert "Alba" in mine and "Berta" not in mine
    assert approver.get("/credit/queue?min_amount=abc").status_code == 422


def test_payment_behaviour_comes_from_the_customers_history(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Ciro")
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    with factories.scoped(org_a.organization_id):
        with clock.pinned(clock.today() - timedelta(days=90)):
            usage_charge(
                account_id=account.credit_account_id,
                order_id=uuid.uuid4(),
                amount=Decimal("200.00"),
                actor=None,
            )
        usages_mark_overdue(suspend_after_days=365)
        credit_increase_request(
            account_id=account.credit_account_id,
            limit=Decimal("1500"),
            reason="Quiere comprar más",
            requester=org_a.users["credit_staff"],
        )
    page = login_as("credit_approver").get("/credit/queue").text
    row = page[page.index("Ciro") :]
    assert "US$200.00" in row  # exposure across the customer's account
    assert "60 días" in row and "1 vencidos" in row and "31 a 60 días" in row


def test_bulk_reject_decides_each_request_alone_and_keeps_four_eyes(login_as, org_a):
    both = factories.staff_create(org_a.organization_id, ["credit_staff", "credit_approver"])
    ids = _requests(org_a, ("Dora", "800", "branch_staff"), ("Elsa", "700", "credit_staff"))
    own_customer = factories.customer_create(org_a.organization_id, first_name="Fidel")
    with factories.scoped(org_a.organization_id):
        own, _ = credit_request(
            customer_id=own_customer.customer_id,
            limit=Decimal("500"),
            term_days=30,
            notes="Solicitud propia",
            requester=both,
        )
        own_id = own.credit_request_id
    client = PortalClient(factories._app.test_client())
    client.login(both.email)
    client.get("/credit/queue")
    data = {"request_ids": [*map(str, ids), str(own_id)], "decision": "reject"}
    missing = client.post("/credit/requests/bulk", data, headers=HTMX)
    assert missing.status_code == 422 and "motivo del rechazo" in missing.text
    response = client.post(
        "/credit/requests/bulk", data | {"approval_notes": "Sin capacidad de pago"}, headers=HTMX
    )
    assert response.status_code == 200
    assert "2 solicitudes rechazadas" in response.text and "Fidel" in response.text
    assert "doble control" in response.text
    assert 'id="queue-count" hx-swap-oob="true">1<' in response.text
    for request_id in ids:
        assert f'id="request-{request_id}" hx-swap-oob="delete"' in response.text
    with factories.scoped(org_a.organization_id):
        states = dict(
            db.session.execute(
                sa.select(CreditRequest.credit_request_id, CreditRequest.state)
            ).all()
        )
    assert [states[i] for i in ids] == ["rejected", "rejected"]
    assert states[own_id] == "pending"
    actions = [
        entry.action
        for request_id in ids
        for entry in factories.audit_entries(
            org_a.organization_id, _account_of_request(org_a, request_id)
        )
    ]
    assert actions.count("credit.rejected") == 2  # audited one by one


def _account_of_request(org, request_id):
    with factories.scoped(org.organization_id):
        return db.session.scalar(
            sa.select(CreditRequest.credit_account_id).where(
                CreditRequest.credit_request_id == request_id
            )
        )


def test_bulk_approve_without_javascript_redirects_to_the_queue(login_as, org_a):
    ids = _requests(org_a, ("Gala", "800", "branch_staff"))
    approver = login_as("credit_approver")
    approver.get("/credit/queue?sort=amount")
    response = approver.post(
        "/credit/requests/bulk",
        {"request_ids": [str(ids[0])], "decision": "approve", "sort": "amount"},
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("sort=amount")
    assert "1 solicitudes aprobadas." in approver.get("/credit/queue").text


# --- approval levels -----------------------------------------------------------------------


def test_above_the_approval_level_only_an_org_admin_decides(login_as, org_a):
    [large] = _requests(org_a, ("Hugo", "12000", "branch_staff"))
    [small] = _requests(org_a, ("Inés", "9000", "branch_staff"))
    approver = login_as("credit_approver")
    page = approver.get("/credit/queue").text
    assert "above-level" in page
    refused = approver.post(f"/credit/requests/{large}/approve", {}, headers=HTMX)
    assert refused.status_code == 422 and "nivel de aprobación (US$10,000.00)" in refused.text
    raised = approver.post(
        f"/credit/requests/{small}/approve", {"credit_limit": "10000.01"}, headers=HTMX
    )
    assert raised.status_code == 422 and "nivel de aprobación" in raised.text
    assert approver.post(f"/credit/requests/{small}/approve", {}, headers=HTMX).status_code == 200

    senior = factories.staff_create(org_a.organization_id, ["credit_approver", "org_admin"])
    client = PortalClient(factories._app.test_client())
    client.login(senior.email)
    client.get("/credit/queue")
    assert client.post(f"/credit/requests/{large}/approve", {}, headers=HTMX).status_code == 200
    with factories.scoped(org_a.organization_id):
        settings = organization_settings_get()
        assert settings.approval_level == Decimal("10000.00")


def test_the_approval_level_is_an_organization_setting(login_as, org_a):
    [request_id] = _requests(org_a, ("Jaime", "12000", "branch_staff"))
    admin = login_as("org_admin")
    admin.get("/settings/")
    saved = admin.post("/settings/", {"max_credit_limit": "50000", "approval_level": "15,000.00"})
    assert saved.status_code == 303
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    assert (
        approver.post(f"/credit/requests/{request_id}/approve", {}, headers=HTMX).status_code == 200
    )


# --- closure and write-off -----------------------------------------------------------------


def _charged_account(org, *amounts):
    customer = factories.customer_create(org.organization_id, first_name="Karla")
    account = factories.credit_account_create(org.organization_id, customer.customer_id)
    with factories.scoped(org.organization_id):
        for amount in amounts:
            usage_charge(
                account_id=account.credit_account_id,
                order_id=uuid.uuid4(),
                amount=Decimal(amount),
                actor=None,
            )
    return account


def test_a_write_off_is_requested_and_decided_by_a_second_approver(login_as, org_a):
    account = _charged_account(org_a, "120.00", "80.00")
    page = f"/credit/accounts/{account.credit_account_id}"
    first = login_as("credit_approver")
    first.get(page)
    asked = first.post(f"{page}/write-off", {"write_off_reason": "Cliente ilocalizable"})
    assert asked.status_code == 303
    request_id = _pending_id(org_a, account.credit_account_id)
    own = first.post(f"/credit/requests/{request_id}/approve", {}, headers=HTMX)
    assert own.status_code == 422 and "doble control" in own.text

    second = factories.staff_create(org_a.organization_id, ["credit_approver"])
    client = PortalClient(factories._app.test_client())
    client.login(second.email)
    queue = client.get("/credit/queue").text
    assert "Castigo de saldo" in queue and "US$200.00" in queue
    decided = client.post(f"/credit/requests/{request_id}/approve", {}, headers=HTMX)
    assert decided.status_code == 200 and "Castigo aprobado." in decided.text

    with factories.scoped(org_a.organization_id):
        closed = account_get(account.credit_account_id)
        assert closed.status == "closed" and closed.credit_used == 0
        assert ledger_outstanding(account.credit_account_id) == 0
        statuses = set(
            db.session.scalars(
                sa.select(CreditUsage.status).where(
                    CreditUsage.credit_account_id == account.credit_account_id
                )
            )
        )
        assert statuses == {"written_off"}
    ledger = client.get(page).text
    assert "Cerrada" in ledger and "Castigo" in ledger and "Revertir" not in ledger
    statement = client.get(f"{page}/statement").text
    assert "Castigo de saldo (US$120.00 a orden" in statement
    assert 'id="closing-balance">US$0.00<' in statement
    aging = client.get("/credit/aging").text
    assert 'id="aging-total">US$0.00<' in aging and "<strong>US$200.00</strong>" in aging
    actions = [
        e.action for e in factories.audit_entries(org_a.organization_id, account.credit_account_id)
    ]
    assert "credit.write_off_requested" in actions and "credit.write_off_approved" in actions


def test_a_write_off_is_never_counted_as_a_payment(login_as, org_a):
    account = _charged_account(org_a, "50.00")
    second = factories.staff_create(org_a.organization_id, ["credit_approver"])
    with factories.scoped(org_a.organization_id):
        request = credit_write_off_request(
            account_id=account.credit_account_id,
            reason="Incobrable",
            requester=org_a.users["credit_approver"],
        )
        credit_approve(
            request_id=request.credit_request_id,
            approver=second,
            limit=None,
            term_days=None,
            notes=None,
        )
        payments = db.session.scalars(
            sa.select(CreditPayment).where(CreditPayment.kind == "payment")
        ).all()
        assert payments == []
    card = login_as("credit_staff").get(f"/customers/{account.customer_id}").text
    assert "Castigo" in card and "Pago ·" not in card


def test_close_needs_no_balance_and_reopening_is_a_new_request(login_as, org_a):
    account = _charged_account(org_a, "40.00")
    page = f"/credit/accounts/{account.credit_account_id}"
    approver = login_as("credit_approver")
    approver.get(page)
    refused = approver.post(f"{page}/close", {"closure_reason": "Lo pidió"}, headers=HTMX)
    assert refused.status_code == 422 and "tiene saldo" in refused.text
    with factories.scoped(org_a.organization_id):
        usage_id = db.session.scalar(sa.select(CreditUsage.usage_id))
    staff = login_as("credit_staff")
    staff.get(page)
    staff.post(f"/credit/usages/{usage_id}/cancel", headers=HTMX)
    closed = approver.post(f"{page}/close", {"closure_reason": "Lo pidió"}, headers=HTMX)
    assert closed.status_code == 200 and "cerrada." in closed.text
    charge = staff.post(
        f"{page}/usages",
        {
            "order_number": factories.order_number(org_a.organization_id, account.customer_id),
            "amount": "10",
        },
        headers=HTMX,
    )
    assert charge.status_code == 422 and "cerrada" in charge.text
    customer = factories.customer_row(org_a.organization_id, account.customer_id)
    assert "Solicitar crédito" in staff.get(f"/customers/{customer.customer_id}").text
    assert _request(staff, customer).status_code == 302
    assert _account(org_a, customer.customer_id).status == "pending"


def test_a_write_off_above_the_approval_level_needs_an_org_admin(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Lino")
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, credit_limit=Decimal("20000")
    )
    with factories.scoped(org_a.organization_id):
        usage_charge(
            account_id=account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal("12000.00"),
            actor=None,
        )
        credit_write_off_request(
            account_id=account.credit_account_id,
            reason="Empresa en quiebra",
            requester=org_a.users["credit_approver"],
        )
    request_id = _pending_id(org_a, account.credit_account_id)
    other = factories.staff_create(org_a.organization_id, ["credit_approver"])
    client = PortalClient(factories._app.test_client())
    client.login(other.email)
    client.get("/credit/queue")
    refused = client.post(f"/credit/requests/{request_id}/approve", {}, headers=HTMX)
    assert refused.status_code == 422 and "nivel de aprobación" in refused.text
    with factories.scoped(org_a.organization_id):
        assert account_get(account.credit_account_id).credit_used == Decimal("12000.00")


def test_the_database_refuses_a_pending_write_off_without_its_amount(org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    refusal = pytest.raises(IntegrityError, match="check_credit_request_amount")
    with factories.scoped(org_a.organization_id), refusal:
        db.session.execute(
            sa.text(
                "INSERT INTO credit_requests (organization_id, credit_account_id, kind,"
                " reason, requested_by) VALUES (:org, :account, 'write_off', 'Sin monto',"
                " :staff)"
            ),
            {
                "org": org_a.organization_id,
                "account": account.credit_account_id,
                "staff": org_a.users["credit_approver"].staff_user_id,
            },
        )


def test_suspend_answers_the_ledger_in_place_or_redirects_without_javascript(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Mara")
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    approver = login_as("credit_approver")
    approver.get(page)
    suspended = approver.post(f"{page}/suspend", {"suspension_reason": "Mora"}, headers=HTMX)
    assert suspended.status_code == 200 and "<html" not in suspended.text
    assert 'id="account-status">Suspendida<' in suspended.text and "Reactivar" in suspended.text
    assert f"Cuenta de crédito de {customer.full_name} suspendida." in suspended.text
    assert 'id="credit-live"' in suspended.text
    reactivated = approver.post(f"{page}/reactivate", {"approval_notes": "Pagó"})
    assert reactivated.status_code == 303 and reactivated.headers["Location"].endswith(page)
    assert f"Cuenta de crédito de {customer.full_name} reactivada." in approver.get(page).text
