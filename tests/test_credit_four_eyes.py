"""Four-eyes through limit changes: an increase is a request someone else decides."""

import re
from decimal import Decimal

import pytest

from portal.credit.services import account_get, credit_request_pending
from portal.extensions import db
from tests import factories
from tests.conftest import PortalClient

HTMX = {"HX-Request": "true"}


def _client(user) -> PortalClient:
    client = PortalClient(factories._app.test_client())
    assert client.login(user.email).status_code == 302
    return client


def _limit(org, account_id) -> Decimal:
    with factories.scoped(org.organization_id):
        return account_get(account_id).credit_limit


def _pending(org, account_id):
    with factories.scoped(org.organization_id):
        request = credit_request_pending(account_id)
        if request is not None:
            db.session.expunge(request)
        return request


def _actions(org, account_id) -> list[str]:
    return [entry.action for entry in factories.audit_entries(org.organization_id, account_id)]


@pytest.fixture
def both(org_a):
    """A user holding credit_staff and credit_approver: the attacker of the finding."""
    return factories.staff_create(org_a.organization_id, ["credit_staff", "credit_approver"])


@pytest.fixture
def opened_by_both(org_a, both):
    """The finding: `both` requests a line and another approver approves US$1."""
    customer = factories.customer_create(org_a.organization_id)
    client = _client(both)
    url = f"/credit/request/{customer.customer_id}"
    client.get(url)
    data = {"requested_limit": "1", "requested_term_days": "30", "request_notes": "Línea mínima"}
    assert client.post(url, data).status_code == 302
    from portal.credit.services import account_for_customer

    with factories.scoped(org_a.organization_id):
        account_id = account_for_customer(customer.customer_id).credit_account_id
    request = _pending(org_a, account_id)
    approver = _client(org_a.users["credit_approver"])
    approver.get("/credit/queue")
    decided = approver.post(f"/credit/requests/{request.credit_request_id}/approve", {})
    assert decided.status_code == 302
    assert _limit(org_a, account_id) == Decimal("1.00")
    return client, account_id


def test_the_requester_cannot_raise_the_limit_alone(org_a, opened_by_both):
    client, account_id = opened_by_both
    page = f"/credit/accounts/{account_id}"
    client.get(page)
    response = client.post(
        f"{page}/limit", {"credit_limit": "9999999", "approval_notes": "Subir"}, headers=HTMX
    )
    assert response.status_code == 422
    assert _limit(org_a, account_id) == Decimal("1.00")


def test_no_approver_raises_a_limit_directly(org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    approver = _client(org_a.users["credit_approver"])
    approver.get(page)
    response = approver.post(
        f"{page}/limit", {"credit_limit": "1500", "approval_notes": "Buen historial"}, headers=HTMX
    )
    assert response.status_code == 422 and "Solicitar aumento" in response.text
    assert _limit(org_a, account.credit_account_id) == Decimal("1000.00")
    assert _actions(org_a, account.credit_account_id) == []


def test_an_increase_is_a_request_decided_by_another_approver(org_a, both):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    requester = _client(both)
    assert "Solicitar aumento" in requester.get(page).text
    asked = requester.post(
        f"{page}/increase", {"requested_limit": "2,500.00", "reason": "Compras de temporada"}
    )
    assert asked.status_code == 303
    assert _limit(org_a, account.credit_account_id) == Decimal("1000.00")
    request = _pending(org_a, account.credit_account_id)
    assert request.kind == "increase" and request.requested_limit == Decimal("2500.00")
    assert request.requested_by == both.staff_user_id and request.reason == "Compras de temporada"

    # In the queue, but not decidable by its requester, even by a forged POST.
    queue = requester.get("/credit/queue").text
    detail = requester.get(f"/credit/requests/{request.credit_request_id}", headers=HTMX).text
    assert "Aumento de límite" in queue and "Usted creó esta solicitud" in detail
    own = requester.post(
        f"/credit/requests/{request.credit_request_id}/approve",
        {"credit_limit": "2500"},
        headers=HTMX,
    )
    assert own.status_code == 422 and "doble control" in own.text
    assert _limit(org_a, account.credit_account_id) == Decimal("1000.00")

    approver = _client(org_a.users["credit_approver"])
    approver.get("/credit/queue")
    detail = approver.get(f"/credit/requests/{request.credit_request_id}").text  # no JS: a page
    assert re.search(r'<input [^>]*name="credit_limit" [^>]*value="2500.00"', detail)
    decided = approver.post(
        f"/credit/requests/{request.credit_request_id}/approve",
        {"credit_limit": "2000.00", "approval_notes": "Aprobado parcialmente"},
        headers=HTMX,
    )
    assert decided.status_code == 200 and "Aumento aprobado." in decided.text
    assert _limit(org_a, account.credit_account_id) == Decimal("2000.00")
    assert _pending(org_a, account.credit_account_id) is None
    assert _actions(org_a, account.credit_account_id) == [
        "credit.increase_requested",
        "credit.increase_approved",
    ]
    entry = factories.audit_entries(org_a.organization_id, account.credit_account_id)[-1]
    assert entry.before["credit_limit"] == "1000.00" and entry.after["credit_limit"] == "2000.00"
    assert entry.after["request"]["decided_by"] == str(org_a.users["credit_approver"].staff_user_id)


def test_a_rejected_increase_leaves_the_limit_and_a_second_pending_one_is_refused(org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    staff = _client(org_a.users["credit_staff"])
    staff.get(page)
    data = {"requested_limit": "3000", "reason": "Nuevo local"}
    assert staff.post(f"{page}/increase", data).status_code == 303
    again = staff.post(f"{page}/increase", data, headers=HTMX)
    assert again.status_code == 422 and "ya tiene una solicitud pendiente" in again.text
    lower = staff.post(
        f"{page}/increase", {"requested_limit": "900", "reason": "Menos"}, headers=HTMX
    )
    assert lower.status_code == 422
    request = _pending(org_a, account.credit_account_id)
    approver = _client(org_a.users["credit_approver"])
    approver.get("/credit/queue")
    rejected = approver.post(
        f"/credit/requests/{request.credit_request_id}/reject",
        {"approval_notes": "Sin ingresos demostrados"},
        headers=HTMX,
    )
    assert rejected.status_code == 200
    with factories.scoped(org_a.organization_id):
        current = account_get(account.credit_account_id)
        assert current.status == "approved" and current.credit_limit == Decimal("1000.00")


def test_a_decrease_is_immediate_audited_and_never_below_what_is_used(org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, credit_used=Decimal("300.00")
    )
    page = f"/credit/accounts/{account.credit_account_id}"
    approver = _client(org_a.users["credit_approver"])
    approver.get(page)
    below = approver.post(
        f"{page}/limit", {"credit_limit": "299.99", "approval_notes": "Reducir"}, headers=HTMX
    )
    assert below.status_code == 422 and "menor que lo usado (US$300.00)" in below.text
    done = approver.post(
        f"{page}/limit", {"credit_limit": "300", "approval_notes": "Reducir"}, headers=HTMX
    )
    assert done.status_code == 200 and "reducido." in done.text
    assert _limit(org_a, account.credit_account_id) == Decimal("300.00")
    entry = factories.audit_entries(org_a.organization_id, account.credit_account_id)[-1]
    assert entry.action == "credit.limit_changed"
    assert entry.actor_id == org_a.users["credit_approver"].staff_user_id
    assert entry.before["credit_limit"] == "1000.00" and entry.after["credit_limit"] == "300.00"


@pytest.mark.parametrize(
    "action, data",
    [
        ("suspend", {"suspension_reason": "Suspensión propia"}),
        ("limit", {"credit_limit": "0.50", "approval_notes": "Reducción propia"}),
    ],
)
def test_the_accounts_own_requester_cannot_act_on_it(org_a, opened_by_both, action, data):
    client, account_id = opened_by_both
    page = f"/credit/accounts/{account_id}"
    client.get(page)
    response = client.post(f"{page}/{action}", data, headers=HTMX)
    assert response.status_code == 422 and "doble control" in response.text
    with factories.scoped(org_a.organization_id):
        current = account_get(account_id)
        assert current.status == "approved" and current.credit_limit == Decimal("1.00")


def test_the_accounts_own_requester_cannot_reactivate_it(org_a, opened_by_both):
    client, account_id = opened_by_both
    page = f"/credit/accounts/{account_id}"
    approver = _client(org_a.users["credit_approver"])
    approver.get(page)
    approver.post(f"{page}/suspend", {"suspension_reason": "Mora reiterada"})
    client.get(page)
    response = client.post(f"{page}/reactivate", {"approval_notes": "Me reactivo"}, headers=HTMX)
    assert response.status_code == 422 and "doble control" in response.text
    with factories.scoped(org_a.organization_id):
        assert account_get(account_id).status == "suspended"
    approver.post(f"{page}/reactivate", {"approval_notes": "Se puso al día"})
    with factories.scoped(org_a.organization_id):
        assert account_get(account_id).status == "approved"
