"""Statement with running balance and CSV; aging buckets with totals, chart, sorting and CSV."""

import csv
import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.credit.models import CreditUsage
from portal.credit.selectors import aging_report
from portal.credit.services import payment_record, usage_charge
from portal.extensions import db
from tests import factories


@pytest.fixture
def history(org_a):
    """Two charges and a partial payment on one account."""
    customer = factories.customer_create(
        org_a.organization_id, first_name="Lucía", last_name="Saldaña"
    )
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    for amount in ("100.00", "250.00"):  # separate transactions, as separate sales are
        with factories.scoped(org_a.organization_id):
            usage_charge(
                account_id=account.credit_account_id,
                order_id=uuid.uuid4(),
                amount=Decimal(amount),
                actor=None,
            )
            db.session.commit()
    with factories.scoped(org_a.organization_id):
        payment_record(
            account_id=account.credit_account_id,
            amount=Decimal("120.00"),
            method="transfer",
            reference="TRF-77",
            payment_date=clock.today(),
            key=uuid.uuid4(),
            actor=None,
        )
        db.session.commit()
    return org_a, customer, account


def test_statement_shows_movements_with_running_balance(login_as, history):
    _, _, account = history
    page = (
        login_as("credit_staff").get(f"/credit/accounts/{account.credit_account_id}/statement").text
    )
    assert "Saldo inicial" in page and "TRF-77" in page
    assert 'id="closing-balance">US$230.00<' in page
    assert "US$100.00 a cargo" in page and "US$20.00 a cargo" in page  # FIFO allocation shown


def test_statement_csv_and_date_filter(login_as, history):
    _, _, account = history
    client = login_as("credit_approver")
    url = f"/credit/accounts/{account.credit_account_id}/statement"
    rows = list(
        csv.reader(
            io.StringIO(client.get(f"{url}?format=csv").get_data(as_text=True).lstrip("\ufeff"))
        )
    )
    assert rows[0] == ["Fecha", "Detalle", "Cargo", "Abono", "Saldo"]
    assert rows[-1][-1] == "230.00"
    future = (clock.today() + timedelta(days=5)).isoformat()
    page = client.get(f"{url}?start={future}").text
    assert 'Saldo inicial</td><td></td><td></td><td class="num">US$230.00' in page
    assert client.get(f"{url}?start=2026-02-30").status_code == 400
    assert client.get(f"{url}?start=2026-05-01&end=2026-04-01").status_code == 400


def test_aging_buckets_totals_and_sorting(login_as, history, org_a):
    org, _, _ = history
    with factories.scoped(org.organization_id):  # make the oldest charge 45 days late
        oldest = db.session.scalar(sa.select(CreditUsage).order_by(CreditUsage.amount).limit(1))
        oldest.due_date = clock.today() - timedelta(days=45)
        db.session.commit()
        _, totals = aging_report()
    assert totals["days_31_60"] == Decimal("0.00")  # the first charge was already fully paid
    with factories.scoped(org.organization_id):
        second = db.session.scalar(
            sa.select(CreditUsage).order_by(CreditUsage.amount.desc()).limit(1)
        )
        second.due_date = clock.today() - timedelta(days=95)
        db.session.commit()
        _, totals = aging_report()
    assert totals["days_90_plus"] == Decimal("230.00") and totals["total"] == Decimal("230.00")
    page = login_as("credit_staff").get("/credit/aging?sort=days_90_plus").text
    assert "Lucía Saldaña" in page and "<svg" in page and 'id="aging-total">US$230.00<' in page
    csv_text = login_as("org_admin").get("/credit/aging?format=csv").get_data(as_text=True)
    assert "Lucía Saldaña" in csv_text and "230.00" in csv_text
    assert login_as("credit_staff").get("/credit/aging?sort=drop table").status_code == 400
    assert login_as("branch_staff").get("/credit/aging").status_code == 403
