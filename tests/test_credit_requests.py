"""A pending account always has its request; the demo's requests can be decided as shown."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.credit.models import CreditAccount, CreditRequest
from portal.db import organization_scope
from portal.extensions import db
from portal.seed import DEMO_ORG_ID, DEMO_PASSWORD, demo_seed
from tests import factories
from tests.conftest import PortalClient

HTMX = {"HX-Request": "true"}


def test_the_database_refuses_a_pending_account_without_its_request(org_a):
    customer = factories.customer_create(org_a.organization_id)
    with factories.scoped(org_a.organization_id):
        db.session.add(
            CreditAccount(customer_id=customer.customer_id, credit_limit=0, status="pending")
        )
        with pytest.raises(IntegrityError, match=r"pending without a pending request"):
            db.session.commit()


@pytest.mark.parametrize("column", ["requested_by", "requested_limit", "requested_at"])
def test_the_database_refuses_a_request_without_requester_limit_or_date(org_a, column):
    customer = factories.customer_create(org_a.organization_id)
    values = {
        "requested_limit": "500",
        "requested_by": str(org_a.users["branch_staff"].staff_user_id),
        "requested_at": datetime.now(UTC).isoformat(),
    } | {column: None}
    with factories.scoped(org_a.organization_id):
        account = CreditAccount(customer_id=customer.customer_id, credit_limit=0, status="pending")
        db.session.add(account)
        db.session.flush()
        refusal = f'null value in column "{column}"|"check_credit_request_amount"'
        with pytest.raises(IntegrityError, match=refusal):
            db.session.execute(
                sa.text(
                    "INSERT INTO credit_requests (organization_id, credit_account_id, kind,"
                    " requested_limit, requested_term_days, reason, requested_by, requested_at)"
                    " VALUES (:org, :account, 'new_line', CAST(:requested_limit AS numeric), 30,"
                    " 'Prueba', CAST(:requested_by AS uuid), CAST(:requested_at AS timestamptz))"
                ),
                {"org": org_a.organization_id, "account": account.credit_account_id} | values,
            )


def test_deciding_a_request_cannot_leave_its_account_pending(org_a):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, status="pending", credit_limit=Decimal(0)
    )
    with factories.scoped(org_a.organization_id):
        db.session.execute(
            sa.update(CreditRequest)
            .where(CreditRequest.credit_account_id == account.credit_account_id)
            .values(
                state="rejected",
                decided_at=sa.func.now(),
                decided_by=org_a.users["credit_approver"].staff_user_id,
            )
        )
        with pytest.raises(IntegrityError, match="pending without"):
            db.session.commit()


@pytest.fixture
def demo(app):
    """The demo organizations, seeded as `flask seed-demo` does (no app context left pushed)."""
    with app.app_context():
        demo_seed(customers=80)
        db.session.remove()
    return DEMO_ORG_ID


def test_seeded_requests_are_complete_and_realistic(app_ctx, demo):
    with organization_scope(demo):
        pending_accounts = list(
            db.session.scalars(sa.select(CreditAccount).where(CreditAccount.status == "pending"))
        )
        requests = {
            request.credit_account_id: request
            for request in db.session.scalars(
                sa.select(CreditRequest).where(CreditRequest.state == "pending")
            )
        }
        emails = {
            row.staff_user_id: row.email
            for row in db.session.execute(sa.text("SELECT staff_user_id, email FROM staff_users"))
        }
        decided = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(CreditRequest)
            .where(CreditRequest.state != "pending")
        )
        assert len(pending_accounts) >= 2 and decided >= 3
        for account in pending_accounts:
            request = requests[account.credit_account_id]
            assert request.kind == "new_line" and request.requested_limit >= Decimal("500")
            assert 15 <= request.requested_term_days <= 60 and len(request.reason) > 20
            assert emails[request.requested_by] in ("sucursal@demo.pa", "credito@demo.pa")
            age = datetime.now(UTC) - request.requested_at
            assert timedelta(0) <= age <= timedelta(days=14)
        db.session.rollback()


def test_the_demo_approver_approves_every_seeded_request_with_the_form_as_shown(app, demo):
    approver = PortalClient(app.test_client())
    assert approver.login("aprobador@demo.pa", DEMO_PASSWORD).status_code == 302
    page = approver.get("/credit/queue").text
    openers = re.findall(r'hx-get="(/credit/requests/[0-9a-f-]+)"', page)
    assert len(openers) >= 2
    for opener in openers:
        detail = approver.get(opener, headers=HTMX).text
        action = re.search(r'<form method="post" action="(/credit/requests/[^/]+/approve)"', detail)
        action = action.group(1)
        form = re.search(re.escape(action) + r'".*?</form>', detail, re.S).group(0)
        inputs = [
            dict(re.findall(r'([a-z_-]+)="([^"]*)"', tag))
            for tag in re.findall(r"<input ([^>]*)>", form)
        ]
        fields = {attributes["name"]: attributes.get("value", "") for attributes in inputs}
        assert Decimal(fields["credit_limit"]) >= Decimal("500")  # the requested amount
        if "payment_term_days" in fields:  # a new line; an increase keeps the account's term
            assert 15 <= int(fields["payment_term_days"]) <= 60  # the requested term
        response = approver.post(action, fields | {"approval_notes": ""}, headers=HTMX)
        assert response.status_code == 200 and " aprobado." in response.text
    assert "No hay solicitudes pendientes." in approver.get("/credit/queue").text
    with app.app_context(), organization_scope(DEMO_ORG_ID):
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(CreditAccount)
                .where(CreditAccount.status == "pending")
            )
            == 0
        )
        db.session.remove()


def test_the_queue_shows_the_requested_amount_term_requester_and_date(login_as, org_a):
    customer = factories.customer_create(org_a.organization_id, first_name="Itzel")
    staff = login_as("branch_staff")
    url = f"/credit/request/{customer.customer_id}"
    staff.get(url)
    staff.post(
        url,
        {"requested_limit": "2,750.50", "requested_term_days": "45", "request_notes": "Tienda"},
    )
    page = login_as("credit_approver").get("/credit/queue").text
    assert "US$2,750.50<br><small>a 45 días" in page
    assert org_a.users["branch_staff"].full_name in page and "solicitado —" not in page
    opener = re.search(r'hx-get="(/credit/requests/[0-9a-f-]+)"', page).group(1)
    detail = login_as("credit_approver").get(opener, headers=HTMX).text
    assert 'value="2750.50"' in detail and 'name="payment_term_days"' in detail
    assert 'value="45"' in detail and "Tienda" in detail


def test_an_unknown_request_id_is_404(login_as):
    approver = login_as("credit_approver")
    approver.get("/credit/queue")
    assert approver.post(f"/credit/requests/{uuid.uuid4()}/approve", {}).status_code == 404
    assert (
        approver.post(
            f"/credit/requests/{uuid.uuid4()}/reject", {"approval_notes": "No procede"}
        ).status_code
        == 404
    )


def test_the_migration_moves_existing_requests_without_losing_them(app, owner_engine, org_a):
    """0007 on a database of the old shape: every requested account keeps its request."""
    from flask_migrate import downgrade, upgrade

    staff = org_a.users["branch_staff"].staff_user_id
    approver = org_a.users["credit_approver"].staff_user_id
    customers = [factories.customer_create(org_a.organization_id) for _ in range(4)]
    with app.app_context():
        downgrade(revision="0005_staff_session_cutoff")
    try:
        with owner_engine.begin() as connection:
            connection.execute(
                sa.text("SELECT set_config('app.current_organization_id', :org, true)"),
                {"org": str(org_a.organization_id)},
            )
            insert = sa.text(
                "INSERT INTO credit_accounts (organization_id, customer_id, credit_limit, status,"
                " payment_term_days, requested_by, requested_at, requested_limit,"
                " requested_term_days, request_notes, decided_by, decided_at, approved_by,"
                " approved_at, approval_notes)"
                " VALUES (:org, :customer, :limit, :status, 30, :requester, now(), :requested,"
                " 45, :notes, :decider, :decided_at, :approved_by, :approved_at, :approval_notes)"
            )
            common = {"org": org_a.organization_id, "notes": "Cliente antiguo"}
            legacy = [
                {"status": "pending", "limit": 0, "requester": staff, "requested": 800},
                {"status": "pending", "limit": 2500, "requester": None, "requested": None},
                {"status": "approved", "limit": 1200, "requester": staff, "requested": 1500},
                {"status": "cancelled", "limit": 0, "requester": staff, "requested": 900},
            ]
            for customer, row in zip(customers, legacy, strict=True):
                decided = row["status"] != "pending"
                connection.execute(
                    insert,
                    common
                    | row
                    | {
                        "customer": customer.customer_id,
                        "decider": approver if decided else None,
                        "decided_at": datetime.now(UTC) if decided else None,
                        "approved_by": approver if row["status"] == "approved" else None,
                        "approved_at": datetime.now(UTC).date()
                        if row["status"] == "approved"
                        else None,
                        "approval_notes": "Sin ingresos" if row["status"] == "cancelled" else None,
                    },
                )
    finally:
        with app.app_context():
            upgrade()
    with factories.scoped(org_a.organization_id):
        accounts = {
            account.customer_id: account for account in db.session.scalars(sa.select(CreditAccount))
        }
        requests = {
            request.credit_account_id: request
            for request in db.session.scalars(sa.select(CreditRequest))
        }
        pending, incomplete, approved, rejected = (
            accounts[customer.customer_id] for customer in customers
        )
        assert pending.status == "pending"
        request = requests[pending.credit_account_id]
        assert (request.state, request.requested_limit, request.requested_term_days) == (
            "pending",
            Decimal("800.00"),
            45,
        )
        assert request.requested_by == staff and request.reason == "Cliente antiguo"
        assert incomplete.status == "cancelled" and "incompleta" in incomplete.approval_notes
        assert incomplete.credit_account_id not in requests
        request = requests[approved.credit_account_id]
        assert (request.state, request.decided_by, request.approved_limit) == (
            "approved",
            approver,
            Decimal("1200.00"),
        )
        request = requests[rejected.credit_account_id]
        assert (request.state, request.decision_notes) == ("rejected", "Sin ingresos")
