"""The home page: what needs each role today, each item a link to the list where the work is."""

import uuid
from datetime import UTC, datetime

from portal.events.models import InboxEvent
from portal.extensions import db
from tests import factories

HTMX = {"HX-Request": "true"}


def _item(page: str, item_id: str) -> str:
    start = page.index(f'id="{item_id}"')
    return " ".join(page[start : page.index("</li>", start)].split())


def test_an_approver_sees_the_requests_waiting_and_no_requester_items(login_as, org_a, org_b):
    customer = factories.customer_create(org_a.organization_id)
    factories.credit_account_create(org_a.organization_id, customer.customer_id, status="pending")
    theirs = factories.customer_create(org_b.organization_id)
    factories.credit_account_create(org_b.organization_id, theirs.customer_id, status="pending")
    page = login_as("credit_approver").get("/").text
    approvals = _item(page, "today-approvals")
    assert 'href="/credit/queue"' in approvals
    assert (
        "<strong>1</strong>" in approvals and "solicitud de crédito espera su decisión" in approvals
    )
    assert 'id="today-decisions"' not in page and 'id="today-dead"' not in page
    assert 'id="today-promises"' in page


def test_a_requester_sees_their_requests_decided_since_they_last_looked(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    staff = login_as("branch_staff")
    staff.get(f"/credit/request/{customer.customer_id}")
    sent = staff.post(
        f"/credit/request/{customer.customer_id}",
        {"requested_limit": "1500.00", "requested_term_days": "45", "request_notes": "Frecuente"},
    )
    assert sent.status_code == 302, sent.text
    assert "<strong>0</strong>" in _item(staff.get("/").text, "today-decisions")
    approver = login_as("credit_approver")
    queue = approver.get("/credit/queue").text
    request_id = queue.split('id="request-', 1)[1][:36]
    approver.post(
        f"/credit/requests/{request_id}/reject",
        {"approval_notes": "Ingresos no verificables"},
        headers=HTMX,
    )
    decided = _item(staff.get("/").text, "today-decisions")
    assert 'href="/credit/mine"' in decided
    assert "<strong>1</strong> solicitud suya fue decidida desde su última visita" in decided
    staff.get("/credit/mine")  # seen
    assert "<strong>0</strong>" in _item(staff.get("/").text, "today-decisions")
    assert 'id="today-approvals"' not in staff.get("/").text


def test_an_admin_sees_the_dead_letters_of_their_organization(app, login_as, org_a, org_b):
    for organization in (org_a, org_b, org_b):
        with factories.scoped(organization.organization_id):
            db.session.add(
                InboxEvent(
                    event_id=uuid.uuid4(),
                    event_type="order.completed",
                    occurred_at=datetime.now(UTC),
                    payload={},
                    payload_hash="0" * 64,
                    status="dead",
                    last_error="order_number inválido",
                )
            )
            db.session.commit()
    dead = _item(login_as("org_admin").get("/").text, "today-dead")
    assert 'href="/events/?status=dead"' in dead
    assert "<strong>1</strong> evento fallido por revisar" in dead


def test_the_home_page_lists_the_customers_i_opened(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Irene")
    staff = login_as("branch_staff")
    assert "Los clientes que abra aparecerán aquí." in staff.get("/").text
    staff.get(f"/customers/{customer.customer_id}")
    page = staff.get("/").text
    assert f'href="/customers/{customer.customer_id}">{customer.full_name}</a>' in page
