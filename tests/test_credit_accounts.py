"""Credit accounts through the web: request, queue, four-eyes, approve/reject, suspend, limits."""

import re
from decimal import Decimal

import pytest

from portal.credit.services import account_for_customer, account_get, credit_request_pending
from portal.extensions import db
from tests import factories

HTMX = {"HX-Request": "true"}


def _account(org, customer_id):
    with factories.scoped(org.organization_id):
        account = account_for_customer(customer_id)
        if account is not None:
            db.session.expunge(account)
        return account


def _pending_request(org, account_id):
    with factories.scoped(org.organization_id):
        request = credit_request_pending(account_id)
        if request is not None:
            db.session.expunge(request)
        return request


def _decide_url(org, account, action):
    request = _pending_request(org, account.credit_account_id)
    return f"/credit/requests/{request.credit_request_id}/{action}"


@pytest.fixture
def customer(org_a):
    return factories.customer_create(org_a.organization_id, first_name="Ana", last_name="Crédito")


def _request(client, customer, **overrides):
    client.get(f"/credit/request/{customer.customer_id}")
    data = {
        "requested_limit": "1500.00",
        "requested_term_days": "45",
        "request_notes": "Cliente frecuente desde 2019",
    } | overrides
    return client.post(f"/credit/request/{customer.customer_id}", data)


def _refused_page(client, response):
    """A refused form redirects (303) to itself, where the page shows the errors once."""
    assert response.status_code == 303
    return client.get(response.headers["Location"])


def test_request_creates_a_pending_account_with_audit(login_as, org_a, customer):
    response = _request(login_as("branch_staff"), customer)
    assert response.status_code == 302
    account = _account(org_a, customer.customer_id)
    assert account.status == "pending" and account.credit_limit == 0
    request = _pending_request(org_a, account.credit_account_id)
    assert request.kind == "new_line" and request.requested_at is not None
    assert request.requested_limit == Decimal("1500.00") and request.requested_term_days == 45
    assert request.requested_by == org_a.users["branch_staff"].staff_user_id
    entries = factories.audit_entries(org_a.organization_id, account.credit_account_id)
    assert [entry.action for entry in entries] == ["credit.requested"]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("requested_limit", "-5", "mayor que cero"),
        ("requested_limit", "0", "mayor que cero"),
        ("requested_limit", "abc", "monto en números"),
        ("requested_limit", "NaN", "monto en números"),
        ("requested_limit", "Infinity", "monto en números"),
        ("requested_limit", "10.005", "dos decimales"),
        ("requested_limit", "12345678901234", "demasiado grande"),
        ("requested_term_days", "0", "Plazo entre 1 y 365"),
        ("requested_term_days", "9999", "Plazo entre 1 y 365"),
        ("requested_term_days", "treinta", "Plazo entre 1 y 365"),
        ("request_notes", "", "Indique justificación"),
        ("request_notes", "x" * 1001, "Entre 3 y 1000"),
    ],
)
def test_bad_request_input_is_a_field_error_and_writes_nothing(
    login_as, org_a, customer, field, value, message
):
    client = login_as("credit_staff")
    response = _refused_page(client, _request(client, customer, **{field: value}))
    assert response.status_code == 422 and message in response.text
    assert _account(org_a, customer.customer_id) is None


def test_blocked_customer_cannot_request(login_as, org_a):
    blocked = factories.customer_create(org_a.organization_id, status="blocked")
    client = login_as("credit_staff")
    response = _refused_page(client, _request(client, blocked))
    assert response.status_code == 422 and "cliente activo" in response.text


def test_queue_shows_pending_oldest_first_with_facts(login_as, org_a):
    older = factories.customer_create(org_a.organization_id, first_name="Primera")
    newer = factories.customer_create(org_a.organization_id, first_name="Segunda")
    staff = login_as("credit_staff")
    _request(staff, older)
    _request(staff, newer)
    page = login_as("credit_approver").get("/credit/queue").text
    assert page.index("Primera") < page.index("Segunda")
    assert "US$1,500.00<br><small>a 45 días" in page and "Exposición" in page
    assert 'id="queue-count">2<' in page


def test_approver_approves_inline_with_another_limit(login_as, org_a, customer):
    _request(login_as("branch_staff"), customer)
    account = _account(org_a, customer.customer_id)
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    response = approver.post(
        _decide_url(org_a, account, "approve"),
        {"credit_limit": "1200.00", "payment_term_days": "30", "approval_notes": "Ajustado"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "Crédito aprobado." in response.text and 'hx-swap-oob="true">0<' in response.text
    approved = _account(org_a, customer.customer_id)
    assert approved.status == "approved" and approved.credit_limit == Decimal("1200.00")
    assert approved.payment_term_days == 30 and approved.approved_at is not None
    assert approved.approved_by == org_a.users["credit_approver"].staff_user_id
    entry = factories.audit_entries(org_a.organization_id, account.credit_account_id)[-1]
    assert entry.action == "credit.approved"
    assert entry.before["status"] == "pending" and entry.after["credit_limit"] == "1200.00"
    assert "Primera" not in approver.get("/credit/queue").text


def test_reject_needs_notes(login_as, org_a, customer):
    _request(login_as("branch_staff"), customer)
    account = _account(org_a, customer.customer_id)
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    url = _decide_url(org_a, account, "reject")
    refused = approver.post(url, {"approval_notes": ""}, headers=HTMX)
    assert refused.status_code == 422 and refused.headers["HX-Retarget"].startswith("#refusal-")
    assert _account(org_a, customer.customer_id).status == "pending"
    assert (
        approver.post(url, {"approval_notes": "Historial insuficiente"}, headers=HTMX).status_code
        == 200
    )
    assert _account(org_a, customer.customer_id).status == "cancelled"


def test_four_eyes_the_requester_cannot_decide_even_by_a_forged_post(login_as, org_a, customer):
    both = factories.staff_create(org_a.organization_id, ["credit_staff", "credit_approver"])
    from tests.conftest import PortalClient

    client = PortalClient(factories._app.test_client())
    client.login(both.email)
    _request(client, customer)
    account = _account(org_a, customer.customer_id)
    request_id = _pending_request(org_a, account.credit_account_id).credit_request_id
    page = client.get(f"/credit/requests/{request_id}", headers=HTMX).text
    assert "Usted creó esta solicitud" in page and "/approve" not in page
    for action, data in (("approve", {}), ("reject", {"approval_notes": "Rechazo propio"})):
        response = client.post(_decide_url(org_a, account, action), data, headers=HTMX)
        assert response.status_code == 422 and "doble control" in response.text
    assert _account(org_a, customer.customer_id).status == "pending"


def test_a_decided_request_cannot_be_decided_again(login_as, org_a, customer):
    _request(login_as("branch_staff"), customer)
    account = _account(org_a, customer.customer_id)
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    approve, reject = _decide_url(org_a, account, "approve"), _decide_url(org_a, account, "reject")
    assert approver.post(approve, {}, headers=HTMX).status_code == 200
    again = approver.post(reject, {"approval_notes": "tarde"}, headers=HTMX)
    assert again.status_code == 422 and "ya fue decidida" in again.text
    assert _account(org_a, customer.customer_id).status == "approved"


def test_rejected_customer_can_request_again(login_as, org_a, customer):
    staff = login_as("branch_staff")
    _request(staff, customer)
    account = _account(org_a, customer.customer_id)
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    approver.post(_decide_url(org_a, account, "reject"), {"approval_notes": "No ahora"})
    assert _request(staff, customer, requested_limit="500").status_code == 302
    again = _account(org_a, customer.customer_id)
    request = _pending_request(org_a, again.credit_account_id)
    assert again.status == "pending" and request.requested_limit == Decimal("500.00")
    pending = _refused_page(staff, _request(staff, customer))  # already pending
    assert pending.status_code == 422


def test_suspend_reactivate_and_limit_changes_by_approvers(login_as, org_a, customer):
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    approver = login_as("credit_approver")
    base = f"/credit/accounts/{account.credit_account_id}"
    approver.get(base)
    assert approver.post(f"{base}/suspend", {"suspension_reason": ""}).status_code == 303
    assert _account(org_a, customer.customer_id).status == "approved"
    approver.post(f"{base}/suspend", {"suspension_reason": "Mora reiterada"})
    suspended = _account(org_a, customer.customer_id)
    assert suspended.status == "suspended" and suspended.suspension_reason == "Mora reiterada"
    approver.post(f"{base}/reactivate", {"approval_notes": "Se puso al día"})
    assert _account(org_a, customer.customer_id).status == "approved"
    # An increase is a request now (see test_credit_four_eyes.py); a decrease is immediate.
    approver.post(f"{base}/limit", {"credit_limit": "600", "approval_notes": "Menor consumo"})
    assert _account(org_a, customer.customer_id).credit_limit == Decimal("600.00")
    actions = [
        e.action for e in factories.audit_entries(org_a.organization_id, account.credit_account_id)
    ]
    assert actions == ["credit.suspended", "credit.reactivated", "credit.limit_changed"]


def test_limit_cannot_go_below_what_is_used(login_as, org_a, customer):
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, credit_used=Decimal("0")
    )
    staff = login_as("credit_staff")
    staff.get(f"/credit/accounts/{account.credit_account_id}")
    staff.post(
        f"/credit/accounts/{account.credit_account_id}/usages",
        {
            "order_number": factories.order_number(org_a.organization_id, customer.customer_id),
            "amount": "700",
        },
    )
    approver = login_as("credit_approver")
    approver.get(f"/credit/accounts/{account.credit_account_id}")
    approver.post(
        f"/credit/accounts/{account.credit_account_id}/limit",
        {"credit_limit": "600", "approval_notes": "Reducir"},
    )
    assert (
        "menor que lo usado (US$700.00)"
        in approver.get(f"/credit/accounts/{account.credit_account_id}").text
    )
    assert _account(org_a, customer.customer_id).credit_limit == Decimal("1000.00")


@pytest.mark.parametrize(
    "role, method, path, allowed",
    [
        ("branch_staff", "get", "/credit/queue", False),
        ("credit_staff", "get", "/credit/queue", False),
        ("credit_approver", "get", "/credit/queue", True),
        ("branch_staff", "post", "/approve", False),
        ("credit_staff", "post", "/approve", False),
        ("branch_staff", "post", "/payments", False),
        ("branch_staff", "post", "/usages", False),
        ("credit_approver", "post", "/usages", False),
        ("credit_staff", "post", "/suspend", False),
        ("branch_staff", "get", "/statement", False),
        ("credit_staff", "get", "/statement", True),
        ("branch_staff", "get", "", True),
    ],
)
def test_role_boundaries(login_as, org_a, customer, role, method, path, allowed):
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, status="pending"
    )
    client = login_as(role)
    client.get("/customers/")
    if path.startswith("/credit"):
        url = path
    elif path == "/approve":
        url = _decide_url(org_a, account, "approve")
    else:
        url = f"/credit/accounts/{account.credit_account_id}{path}"
    response = getattr(client, method)(url)
    assert (response.status_code != 403) is allowed
    assert _account(org_a, customer.customer_id).status == "pending"


def test_another_organizations_account_ids_are_404_and_unchanged(login_as, org_a, org_b):
    theirs_customer = factories.customer_create(org_b.organization_id)
    theirs = factories.credit_account_create(
        org_b.organization_id, theirs_customer.customer_id, status="pending"
    )
    base = f"/credit/accounts/{theirs.credit_account_id}"
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    assert approver.get(base).status_code == 404
    assert approver.post(_decide_url(org_b, theirs, "approve"), {}).status_code == 404
    assert approver.post(f"{base}/suspend", {"suspension_reason": "x" * 5}).status_code == 404
    staff = login_as("credit_staff")
    staff.get("/customers/")
    assert staff.post(f"{base}/usages", {"order_number": "F-1", "amount": "5"}).status_code == 404
    assert staff.post(f"{base}/payments", {"amount": "5"}).status_code == 404
    assert staff.get(f"{base}/statement").status_code == 404
    assert staff.get(f"/credit/request/{theirs_customer.customer_id}").status_code == 404
    with factories.scoped(org_b.organization_id):
        assert account_get(theirs.credit_account_id).status == "pending"
    assert (
        "/credit/accounts/" + str(theirs.credit_account_id)
        not in approver.get("/credit/queue").text
    )


def test_customer_page_links_to_the_account_and_offers_a_request(login_as, org_a, customer):
    page = login_as("branch_staff").get(f"/customers/{customer.customer_id}").text
    assert f"/credit/request/{customer.customer_id}" in page
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = login_as("credit_staff").get(f"/customers/{customer.customer_id}").text
    assert f"/credit/accounts/{account.credit_account_id}" in page
    assert re.search(r"Disponible</dt><dd[^>]*>US\$1,000.00", page)
