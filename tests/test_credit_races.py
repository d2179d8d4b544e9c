"""Races replayed over HTTP: a double-clicked request and ten payments at once, never a 500."""

import threading
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.credit.models import CreditAccount, CreditPayment, CreditRequest
from portal.credit.selectors import ledger_outstanding
from portal.credit.services import account_get
from portal.extensions import db
from tests import factories
from tests.conftest import PortalClient

HTMX = {"HX-Request": "true"}


def _at_once(posts) -> list:
    """Run the callables together (a barrier releases them at once); a crash counts as a 500."""
    barrier = threading.Barrier(len(posts))
    outcomes = [None] * len(posts)

    def attempt(index, post):
        barrier.wait(timeout=30)
        try:
            response = post()
            outcomes[index] = (response.status_code, response.text)
        except Exception as error:  # an unhandled error is what a 500 is
            outcomes[index] = (500, repr(error))

    threads = [
        threading.Thread(target=attempt, args=(index, post)) for index, post in enumerate(posts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _client(app, email: str, page: str) -> PortalClient:
    client = PortalClient(app.test_client())
    assert client.login(email).status_code == 302
    client.get(page)
    return client


@pytest.mark.parametrize("attempt", range(3))
def test_a_double_clicked_credit_request_gets_the_existing_request(app, org_a, attempt):
    customer = factories.customer_create(org_a.organization_id)
    url = f"/credit/request/{customer.customer_id}"
    email = org_a.users["branch_staff"].email
    clicks = [_client(app, email, url) for _ in range(2)]  # one user, two tabs / a double click
    data = {
        "requested_limit": "1,500.00",
        "requested_term_days": "30",
        "request_notes": "Cliente frecuente, compra a plazos",
    }
    outcomes = _at_once([lambda client=client: client.post(url, data) for client in clicks])
    assert [status for status, _ in outcomes] == [302, 302], outcomes
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditAccount)) == 1
        requests = list(db.session.scalars(sa.select(CreditRequest)))
        assert len(requests) == 1 and requests[0].requested_limit == Decimal("1500.00")
        account_id = requests[0].credit_account_id
    entries = factories.audit_entries(org_a.organization_id, account_id)
    assert [entry.action for entry in entries] == ["credit.requested"]
    page = clicks[0].get(f"/customers/{customer.customer_id}").text
    assert "ya estaba registrada" in page or "enviada a aprobación" in page


def test_another_request_while_one_is_pending_is_refused_in_spanish(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id)
    url = f"/credit/request/{customer.customer_id}"
    data = {"requested_limit": "900", "requested_term_days": "30", "request_notes": "Primera"}
    staff = login_as("branch_staff")
    staff.get(url)
    assert staff.post(url, data).status_code == 302
    assert staff.post(url, data).status_code == 302  # the same one again: harmless
    other = login_as("credit_staff")
    other.get(url)
    posted = other.post(url, data)
    assert posted.status_code == 303  # Post/Redirect/Get: the form's page shows the refusal
    refused = other.get(posted.headers["Location"])
    assert refused.status_code == 422 and "ya tiene una solicitud de crédito pendiente" in (
        refused.text
    )
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditRequest)) == 1


def test_ten_concurrent_payments_post_what_is_owed_and_refuse_the_rest(app, org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    staff = _client(app, org_a.users["credit_staff"].email, page)
    for amount in ("500.00", "500.00"):
        charged = staff.post(
            f"{page}/usages",
            {
                "order_number": factories.order_number(org_a.organization_id, customer.customer_id),
                "amount": amount,
            },
            headers=HTMX,
        )
        assert charged.status_code == 200
    clients = [_client(app, org_a.users["credit_staff"].email, page) for _ in range(10)]

    def pay(client):
        return client.post(
            f"{page}/payments",
            {
                "amount": "400.00",
                "payment_method": "cash",
                "payment_date": clock.today().isoformat(),
                "idempotency_key": str(uuid.uuid4()),
            },
            headers=HTMX,
        )

    outcomes = _at_once([lambda client=client: pay(client) for client in clients])
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == [200] * 2 + [422] * 8, outcomes
    for status, text in outcomes:
        if status == 422:
            assert "Pago mayor que lo adeudado" in text
    with factories.scoped(org_a.organization_id):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditPayment)) == 2
        current = account_get(account.credit_account_id)
        assert current.credit_used == Decimal("200.00")
        assert current.credit_used == ledger_outstanding(account.credit_account_id)
