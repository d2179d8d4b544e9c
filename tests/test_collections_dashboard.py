"""The collections dashboard: overdue credit by bucket over the last 12 months (months kept by the
nightly job, earlier months filled from the ledger once), this month's promises and collections,
days sales outstanding; for the collections roles only, and per organization."""

import uuid
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal import clock
from portal.collections.services import promises_settle
from portal.credit.reports import aging_summary, history_months
from portal.credit.services import aging_months_record, payment_record, usage_charge
from portal.extensions import db
from tests import factories
from tests.test_collections_dunning import _promise


def _charge(org, account_id, amount: str, *, created_days_ago: int, due_days_ago: int):
    with factories.scoped(org.organization_id):
        usage, _ = usage_charge(
            account_id=account_id,
            order_id=uuid.uuid4(),
            amount=Decimal(amount),
            actor=org.users["credit_staff"],
        )
        db.session.execute(
            sa.text(
                "UPDATE credit_usages SET created_at = now() - make_interval(days => :c),"
                " due_date = CAST(:due AS date) WHERE usage_id = :u"
            ),
            {
                "c": created_days_ago,
                "due": clock.today() - timedelta(days=due_days_ago),
                "u": usage.usage_id,
            },
        )
        db.session.commit()


def _account(org, name: str):
    customer = factories.customer_create(org.organization_id, first_name=name)
    return factories.credit_account_create(org.organization_id, customer.customer_id)


def _desk(org) -> dict:
    """Ana owes US$100 charged 70 days ago (40 days late), pays US$30 today after promising
    US$20; Beto owes US$300 charged 10 days ago, not yet due, and broke a promise."""
    today = clock.today()
    ana, beto = _account(org, "Ana"), _account(org, "Beto")
    _charge(org, ana.credit_account_id, "100.00", created_days_ago=70, due_days_ago=40)
    _charge(org, beto.credit_account_id, "300.00", created_days_ago=10, due_days_ago=-20)
    _promise(org, ana.credit_account_id, made=today, due=today + timedelta(days=3), amount="20")
    early = today - timedelta(days=3)
    _promise(org, beto.credit_account_id, made=early, due=today - timedelta(days=1), amount="50")
    with factories.scoped(org.organization_id):
        payment_record(
            account_id=ana.credit_account_id,
            amount=Decimal("30.00"),
            method="cash",
            reference=None,
            payment_date=today,
            key=uuid.uuid4(),
            actor=org.users["credit_staff"],
        )
        assert promises_settle(today=today) == {"kept": 1, "broken": 1}
        db.session.commit()
    return {"promised_early": early}


def test_the_dashboard_shows_the_month_and_days_sales_outstanding(login_as, org_a):
    desk = _desk(org_a)
    client = login_as("credit_staff")
    page = client.get("/collections/dashboard")
    assert page.status_code == 200
    text = page.text
    month_start = clock.today().replace(day=1)
    made = 1 + (desk["promised_early"] >= month_start)
    assert f'id="kpi-promises">{made} {"hecha" if made == 1 else "hechas"}' in text
    assert "1 cumplida · 1 incumplida" in text
    assert 'id="kpi-collected">US$30.00' in text
    assert 'id="kpi-overdue">US$70.00' in text and "de US$370.00 por cobrar" in text
    # 370 receivable over 400 of credit sales in 90 days, times 90: 83.25 days.
    assert 'id="kpi-dso">83 días' in text
    assert text.count('<tr><th scope="row">') == 12  # a row per month, this one first
    assert 'href="/collections/dashboard"' in client.get("/collections/").text


def test_the_history_is_kept_by_month_and_filled_from_the_ledger_once(app, org_a):
    _desk(org_a)
    today = clock.today()
    months = history_months(today)
    with factories.scoped(org_a.organization_id):
        written = aging_months_record(today=today)
        db.session.commit()
        rows = {
            row.month: row
            for row in db.session.execute(sa.text("SELECT * FROM credit_aging_months")).all()
        }
        first = (today - timedelta(days=70)).replace(day=1)
        assert written == len([month for month in months if month >= first]) == len(rows)
        assert min(rows) == first  # nothing before the first charge
        now = aging_summary(today=today)
        assert rows[months[-1]].days_31_60 == now["days_31_60"] == Decimal("70.00")
        assert rows[months[-1]].not_due == Decimal("300.00")
        # Another night writes only this month; a month left unfinished is filled again.
        assert aging_months_record(today=today) == 1
        if len(rows) > 1:
            db.session.execute(
                sa.text("UPDATE credit_aging_months SET computed_on = month WHERE month = :m"),
                {"m": first},
            )
            assert aging_months_record(today=today) == 2
        db.session.commit()


def test_the_dashboard_is_for_collections_roles_and_per_organization(login_as, org_a, org_b):
    _desk(org_a)
    assert login_as("branch_staff").get("/collections/dashboard").status_code == 403
    theirs = login_as("credit_approver", organization=org_b).get("/collections/dashboard").text
    assert 'id="kpi-collected">US$0.00' in theirs and 'id="kpi-dso">—' in theirs
    assert "0 cumplidas · 0 incumplidas" in theirs
