"""The demo seed looks like a real month of business, and holds every rule the portal enforces.

The invariants are checked on a small seed (SIZE customers per organization, every plan and
persona still present); tests/test_platform.py runs the full-size `flask seed-demo` once.
"""

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from portal.credit.reports import AGING_BUCKETS, aging_summary
from portal.customers.forms import CustomerForm
from portal.db import organization_scope
from portal.extensions import db
from portal.seed import DEMO_ORG_ID, DEMO_ORGANIZATIONS, DEMO_PASSWORD, demo_seed
from portal.segments.models import SEGMENTS
from tests.conftest import PortalClient

SIZE = 240
ORGANIZATIONS = [organization_id for organization_id, _, _ in DEMO_ORGANIZATIONS]


@pytest.fixture
def seeded(app):
    """Both demo organizations at SIZE customers, seeded as `flask seed-demo` does."""
    with app.app_context():
        assert demo_seed(customers=SIZE)
        db.session.remove()
    return app


def _scalars(organization_id, sql: str, **parameters) -> list:
    with organization_scope(organization_id):
        values = list(db.session.scalars(sa.text(sql), parameters))
        db.session.rollback()
    return values


def test_every_segment_has_customers_and_purchases_agree_with_last_purchase(app_ctx, seeded):
    for organization_id in ORGANIZATIONS:
        _every_segment_has_customers_and_purchases_agree_with_last_purchase(organization_id)


def _every_segment_has_customers_and_purchases_agree_with_last_purchase(organization_id):
    segments = _scalars(organization_id, "SELECT DISTINCT segment_code FROM customer_segments")
    assert set(segments) == set(SEGMENTS)
    # Buyers have a lifetime value; last_purchase_at is exactly the last completed purchase.
    disagreements = _scalars(
        organization_id,
        """
        SELECT c.customer_id FROM customers c
        LEFT JOIN (SELECT customer_id, max(completed_at) AS last, sum(total) AS value
                   FROM purchases WHERE status = 'completed' GROUP BY customer_id) p
               ON p.customer_id = c.customer_id
        JOIN customer_segments s ON s.customer_id = c.customer_id
        WHERE c.last_purchase_at IS DISTINCT FROM p.last
           OR s.lifetime_value IS DISTINCT FROM coalesce(p.value, 0)
           OR (s.total_orders = 0) <> (c.last_purchase_at IS NULL)
        """,
    )
    assert disagreements == []
    buyers = _scalars(
        organization_id, "SELECT count(*) FROM customer_segments WHERE total_orders > 0"
    )
    assert buyers[0] > SIZE * 0.8
    span = _scalars(organization_id, "SELECT max(completed_at) - min(completed_at) FROM purchases")
    assert span[0].days >= 600  # two years of history, up to this week


def test_a_customer_without_orders_shows_no_last_purchase(seeded):
    with seeded.app_context(), organization_scope(DEMO_ORG_ID):
        never, bought = (
            db.session.scalar(
                sa.text(
                    "SELECT customer_id FROM customer_segments WHERE total_orders "
                    + condition
                    + " ORDER BY customer_id LIMIT 1"
                )
            )
            for condition in ("= 0", "> 2")
        )
        db.session.rollback()
    staff = PortalClient(seeded.test_client())
    assert staff.login("sucursal@demo.pa", DEMO_PASSWORD).status_code == 302
    page = staff.get(f"/customers/{never}").text
    assert re.search(r"<dt>Última compra</dt><dd>—</dd>", page)
    assert re.search(r"<dt>Órdenes</dt><dd>0</dd>", page)
    page = staff.get(f"/customers/{bought}").text
    assert not re.search(r"<dt>Última compra</dt><dd>—</dd>", page)
    assert "Sin compras registradas" not in page and "US$0.00" not in page.split("Órdenes")[0]


def test_credit_has_every_state_and_aging_bucket_and_the_ledger_holds(app_ctx, seeded):
    for organization_id in ORGANIZATIONS:
        _credit_has_every_state_and_aging_bucket_and_the_ledger_holds(organization_id)


def _credit_has_every_state_and_aging_bucket_and_the_ledger_holds(organization_id):
    states = _scalars(organization_id, "SELECT DISTINCT status FROM credit_accounts")
    assert set(states) == {"pending", "approved", "suspended", "cancelled"}
    with organization_scope(organization_id):
        totals = aging_summary()
        db.session.rollback()
    assert all(totals[key] > 0 for key, _ in AGING_BUCKETS), totals
    broken = _scalars(
        organization_id,
        """
        SELECT a.credit_account_id FROM credit_accounts a
        LEFT JOIN (
            SELECT u.credit_account_id,
                   sum(u.amount - coalesce((SELECT sum(x.amount) FROM credit_payment_allocations x
                                            WHERE x.usage_id = u.usage_id), 0)) AS owed
            FROM credit_usages u WHERE u.status IN ('pending', 'overdue')
            GROUP BY u.credit_account_id
        ) o ON o.credit_account_id = a.credit_account_id
        WHERE a.credit_used <> coalesce(o.owed, 0) OR a.credit_available < 0
           OR a.credit_available <> a.credit_limit - a.credit_used
        """,
    )
    assert broken == []
    activity = _scalars(
        organization_id,
        """
        SELECT count(*) FROM credit_usages UNION ALL
        SELECT count(*) FROM credit_payments UNION ALL
        SELECT count(*) FROM credit_payments WHERE reversed_at IS NOT NULL UNION ALL
        SELECT count(*) FROM credit_usages
        WHERE status = 'paid' AND paid_at < now() - interval '7 days'
        """,
    )
    charges, payments, reversed_payments, paid_long_ago = activity
    assert charges > 40 and payments > 30 and reversed_payments >= 1 and paid_long_ago > 15


def test_pending_requests_name_requester_amount_date_and_reason(app_ctx, seeded):
    for organization_id in ORGANIZATIONS:
        _pending_requests_name_requester_amount_date_and_reason(organization_id)


def _pending_requests_name_requester_amount_date_and_reason(organization_id):
    with organization_scope(organization_id):
        pending = db.session.execute(
            sa.text(
                "SELECT r.kind, r.requested_limit, r.requested_at, r.reason, u.email,"
                " a.credit_limit, a.status FROM credit_requests r"
                " JOIN staff_users u ON u.staff_user_id = r.requested_by"
                " JOIN credit_accounts a ON a.credit_account_id = r.credit_account_id"
                " WHERE r.state = 'pending'"
            )
        ).all()
        db.session.rollback()
    assert {row.kind for row in pending} == {"new_line", "increase"}
    for row in pending:
        assert row.requested_limit >= Decimal("500") and row.requested_at is not None
        assert len(row.reason) > 40 and row.reason[0].isupper()  # a sentence in Spanish
        assert re.fullmatch(r"(sucursal|credito)@(demo|otra)\.pa", row.email)
        if row.kind == "increase":
            assert row.status == "approved" and row.requested_limit > row.credit_limit


def test_every_seeded_customer_passes_the_customer_form(seeded):
    for organization_id in ORGANIZATIONS:
        _every_seeded_customer_passes_the_customer_form(seeded, organization_id)


def _every_seeded_customer_passes_the_customer_form(seeded, organization_id):
    fields = ["customer_type", "company_name", "first_name", "last_name", "email", "phone"]
    fields += ["document_type", "document_number", "birth_date", "gender", "preferred_language"]
    seeded.config["WTF_CSRF_ENABLED"] = False
    with seeded.test_request_context(), organization_scope(organization_id):
        rows = db.session.execute(sa.text(f"SELECT {', '.join(fields)} FROM customers")).all()
        db.session.rollback()
        refused = {}
        for row in rows:
            data = {
                name: "" if value is None else str(value)
                for name, value in zip(fields, row, strict=True)
            }
            form = CustomerForm(formdata=MultiDict(data))
            if not form.validate():
                refused[data["email"]] = form.errors
    assert len(rows) == SIZE and refused == {}


def test_the_inbox_holds_processed_tier_and_order_events_and_a_few_dead_letters(app_ctx, seeded):
    for organization_id in ORGANIZATIONS:
        _the_inbox_holds_processed_tier_and_order_events_and_a_few_dead_letters(organization_id)


def _the_inbox_holds_processed_tier_and_order_events_and_a_few_dead_letters(organization_id):
    with organization_scope(organization_id):
        counts = dict(
            db.session.execute(
                sa.text("SELECT status || ' ' || event_type, count(*) FROM event_inbox GROUP BY 1")
            ).all()
        )
        db.session.rollback()
    assert counts["processed pricing.loyalty.tier_changed"] > 5
    assert counts["processed orders.order.completed"] > SIZE / 4  # this month's orders
    assert counts["processed orders.order.cancelled"] >= 1
    dead = sum(count for key, count in counts.items() if key.startswith("dead "))
    assert 1 <= dead <= 10
    assert not any(key.startswith("received ") for key in counts)


def test_seeding_twice_changes_nothing(app, seeded, tenant_tables, owner_engine):
    def snapshot():
        with owner_engine.connect() as connection:
            return {
                table: connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))
                for table in tenant_tables
            }

    before = snapshot()
    with app.app_context():
        assert demo_seed(customers=SIZE) is False
        db.session.remove()
    assert snapshot() == before and before["customers"] == 2 * SIZE


def test_the_demo_api_key_that_make_run_prints_finds_a_demo_customer(seeded):
    from portal.demo.api import DEMO_API_KEY

    response = seeded.test_client().get(
        "/api/v1/customers?phone=6000-0001", headers={"Authorization": f"Bearer {DEMO_API_KEY}"}
    )
    assert response.status_code == 200, response.text
    assert response.json["phone"] == "+50760000001"


def test_the_demo_has_companies_with_legal_names_and_customers_with_notes(seeded):
    with seeded.app_context():
        for organization_id in ORGANIZATIONS:
            companies = _scalars(
                organization_id, "SELECT full_name FROM customers WHERE customer_type = 'b2b'"
            )
            assert companies and all(name.endswith(", S.A.") for name in companies)
            noted = _scalars(organization_id, "SELECT DISTINCT customer_id FROM customer_notes")
            assert len(noted) >= 6
        (customer_id,) = _scalars(
            DEMO_ORG_ID,
            "SELECT n.customer_id FROM customer_notes n JOIN customers c USING (customer_id)"
            " WHERE c.customer_type = 'b2b' ORDER BY n.created_at LIMIT 1",
        )
        db.session.remove()
    client = PortalClient(seeded.test_client())
    client.login("sucursal@demo.pa", DEMO_PASSWORD)
    page = client.get(f"/customers/{customer_id}").text
    assert "Persona de contacto" in page and 'class="note-body"' in page


def test_the_demo_has_late_fees_one_waived_and_a_year_of_overdue_history(app_ctx, seeded):
    fees = _scalars(
        DEMO_ORG_ID, "SELECT status FROM credit_usages WHERE kind = 'late_fee' ORDER BY usage_id"
    )
    assert len(fees) >= 3 and fees.count("cancelled") == 1
    months = _scalars(
        DEMO_ORG_ID,
        "SELECT days_1_30 + days_31_60 + days_61_90 + days_90_plus FROM credit_aging_months"
        " ORDER BY month",
    )
    assert len(months) >= 6 and sum(1 for overdue in months if overdue > 0) >= 4
