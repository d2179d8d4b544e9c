"""Statement with running balance and CSV; aging totals, chart, keyset pages, CSV."""

import csv
import io
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.credit.models import CreditUsage
from portal.credit.reports import aging_page, aging_rows, aging_summary, statement_lines
from portal.credit.services import (
    aging_refresh_stale,
    payment_record,
    payment_reverse,
    usage_cancel,
    usage_charge,
)
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
    assert "US$100.00 a orden" in page and "US$20.00 a orden" in page  # FIFO allocation shown


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


def test_aging_buckets_totals_and_bucket_filter(login_as, history, org_a):
    org, _, _ = history
    with factories.scoped(org.organization_id):  # make the oldest charge 45 days late
        oldest = db.session.scalar(sa.select(CreditUsage).order_by(CreditUsage.amount).limit(1))
        oldest.due_date = clock.today() - timedelta(days=45)
        db.session.commit()
        totals = aging_summary()
    assert totals["days_31_60"] == Decimal("0.00")  # the first charge was already fully paid
    with factories.scoped(org.organization_id):
        second = db.session.scalar(
            sa.select(CreditUsage).order_by(CreditUsage.amount.desc()).limit(1)
        )
        second.due_date = clock.today() - timedelta(days=95)
        db.session.commit()
        totals = aging_summary()
    assert totals["days_90_plus"] == Decimal("230.00") and totals["total"] == Decimal("230.00")
    page = login_as("credit_staff").get("/credit/aging?bucket=days_90_plus").text
    assert "Lucía Saldaña" in page and "<svg" in page and 'id="aging-total">US$230.00<' in page
    assert "Lucía Saldaña" not in login_as("credit_staff").get("/credit/aging?bucket=not_due").text
    csv_text = login_as("org_admin").get("/credit/aging?format=csv").get_data(as_text=True)
    assert "Lucía Saldaña" in csv_text and "230.00" in csv_text
    assert login_as("credit_staff").get("/credit/aging?bucket=drop table").status_code == 400
    assert login_as("credit_staff").get("/credit/aging?after=x_y").status_code == 400
    assert login_as("branch_staff").get("/credit/aging").status_code == 403


# Days past due of each account's two charges: ties in every bucket, one account fully paid.
PORTFOLIO = [(-5, 10), (-5, 10), (3, 40), (3, 40), (45, 70), (75, 100), (120, 0), (0, 0)]


@pytest.fixture
def portfolio(org_a):
    """Eight accounts, two US$50 charges each at the days past due above; the last one paid,
    US$30 of the oldest charge of the fifth paid (FIFO)."""
    staff = org_a.users["credit_staff"]
    accounts = []
    for index, lateness in enumerate(PORTFOLIO):
        customer = factories.customer_create(
            org_a.organization_id, first_name="Cartera", last_name=f"Cliente {index}"
        )
        account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
        accounts.append(account.credit_account_id)
        with factories.scoped(org_a.organization_id):
            for days in lateness:
                usage, _ = usage_charge(
                    account_id=account.credit_account_id,
                    order_id=uuid.uuid4(),
                    amount=Decimal("50.00"),
                    actor=staff,
                )
                usage.due_date = clock.today() - timedelta(days=days)
                db.session.commit()
    with factories.scoped(org_a.organization_id):
        payment_record(
            account_id=accounts[-1],
            amount=Decimal("100.00"),
            method="cash",
            reference=None,
            payment_date=clock.today(),
            key=uuid.uuid4(),
            actor=staff,
        )
        payment_record(  # partial: 30 of the first charge of the 45/70-day account
            account_id=accounts[4],
            amount=Decimal("30.00"),
            method="cash",
            reference=None,
            payment_date=clock.today(),
            key=uuid.uuid4(),
            actor=staff,
        )
        db.session.commit()
    return org_a, accounts


def test_aging_totals_equal_the_lines_and_the_statements(portfolio):
    org, accounts = portfolio
    keys = ["not_due", "days_1_30", "days_31_60", "days_61_90", "days_90_plus", "total"]
    with factories.scoped(org.organization_id):
        totals = aging_summary()
        rows = list(aging_rows())
        closings = [statement_lines(account, start=None, end=None)[2] for account in accounts]
    assert len(rows) == len(accounts) - 1  # the paid account has no balance
    for key in keys:
        assert totals[key] == sum((getattr(row, key) for row in rows), Decimal(0)), key
    assert totals["total"] == sum(closings, Decimal(0)) == Decimal("670.00")
    assert totals["days_31_60"] == Decimal("150.00") and totals["days_61_90"] == Decimal("70.00")


def test_aging_pages_cover_every_account_once_in_a_stable_order(portfolio, login_as):
    org, accounts = portfolio
    with factories.scoped(org.organization_id):
        expected = [row.credit_account_id for row in aging_rows()]
        seen, cursor = [], None
        while True:
            page = aging_page(cursor=cursor, size=2)
            seen += [row.credit_account_id for row in page.rows]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        overdue = [row.sort_amount for row in aging_rows()]
    assert seen == expected and len(set(seen)) == len(accounts) - 1
    assert overdue == sorted(overdue, reverse=True)  # largest overdue first
    assert expected[-2:] == sorted(expected[-2:], reverse=True)  # the two not-due ties: by id
    client = login_as("credit_staff")
    first = client.get("/credit/aging").text
    assert first.count("Cartera Cliente") == 7 and "Cargar más" not in first


def test_aging_load_more_over_http_and_without_javascript(portfolio, login_as, monkeypatch):
    import portal.credit.reports as reports

    monkeypatch.setattr(reports, "AGING_PAGE_SIZE", 3)
    monkeypatch.setattr(
        reports.aging_page,
        "__kwdefaults__",
        {"bucket": None, "cursor": None, "size": 3, "today": None},
    )
    client = login_as("credit_staff")
    names, url = [], "/credit/aging"
    page = client.get(url).text
    while True:
        names += [
            line.split("Cartera ")[1].split("<")[0]
            for line in page.split("\n")
            if "Cartera Cliente" in line
        ]
        if 'id="aging-more"' not in page:
            break
        url = re.search(r'id="aging-more".*?hx-get="([^"]+)"', page, re.S)[1].replace("&amp;", "&")
        page = client.get(url, headers={"HX-Request": "true"}).text
        assert "<svg" not in page  # only the next rows
    assert len(names) == 7 == len(set(names))
    no_js = client.get(url)  # the same link without htmx: the whole page from that cursor
    assert no_js.status_code == 200 and "<svg" in no_js.text


def test_aging_bucket_filter_lists_only_that_bucket_largest_first(portfolio):
    org, _ = portfolio
    with factories.scoped(org.organization_id):
        page = aging_page(bucket="days_1_30")
        late = aging_page(bucket="days_90_plus")
    assert [row.days_1_30 for row in page.rows] == [Decimal("50.00")] * 4
    ids = [row.credit_account_id for row in page.rows]
    assert ids == sorted(ids, reverse=True)  # ties by account id
    assert [row.days_90_plus for row in late.rows] == [Decimal("50.00")] * 2
    with pytest.raises(ValueError):
        aging_page(bucket="total; drop")


def test_aging_csv_lists_every_account(portfolio, login_as):
    text = login_as("credit_staff").get("/credit/aging?format=csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "Cliente",
        "Por vencer",
        "1 a 30 días",
        "31 a 60 días",
        "61 a 90 días",
        "Más de 90 días",
        "Total",
    ]
    assert sorted(row[0] for row in rows[1:]) == [f"Cartera Cliente {n}" for n in range(7)]
    assert sum(Decimal(row[-1]) for row in rows[1:]) == Decimal("670.00")


def test_statement_running_and_opening_balance_with_a_reversal_and_a_period(org_a):
    staff, approver = org_a.users["credit_staff"], org_a.users["credit_approver"]
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    account_id = account.credit_account_id
    with factories.scoped(org_a.organization_id):
        for amount in ("100.00", "50.00"):
            usage_charge(
                account_id=account_id, order_id=uuid.uuid4(), amount=Decimal(amount), actor=staff
            )
            db.session.commit()
        payment, _ = payment_record(
            account_id=account_id,
            amount=Decimal("120.00"),
            method="check",
            reference="Cheque 9",
            payment_date=clock.today(),
            key=uuid.uuid4(),
            actor=staff,
        )
        db.session.commit()
        payment_reverse(payment_id=payment.payment_id, reason="Cheque devuelto", actor=approver)
        db.session.commit()
        # Move the first charge into last month: it is the opening balance of this month.
        db.session.execute(
            sa.update(CreditUsage)
            .where(CreditUsage.amount == Decimal("100.00"))
            .values(created_at=CreditUsage.created_at - timedelta(days=40))
        )
        db.session.commit()
        opening_all, lines_all, closing_all = statement_lines(account_id, start=None, end=None)
        start = clock.today() - timedelta(days=10)
        opening, lines, closing = statement_lines(account_id, start=start, end=None)
        _, before, _ = statement_lines(account_id, start=None, end=start)
    assert opening_all == Decimal("0.00") and closing_all == closing == Decimal("150.00")
    assert [line.balance for line in lines_all] == [
        Decimal("100.00"),
        Decimal("150.00"),
        Decimal("30.00"),
        Decimal("150.00"),
    ]
    assert opening == Decimal("100.00") and [line.balance for line in lines] == [
        Decimal("150.00"),
        Decimal("30.00"),
        Decimal("150.00"),
    ]
    paid = "Pago revertido Cheque ref. Cheque 9 (US$100.00 a orden "
    assert lines[1].description.startswith(paid)
    assert lines[2].description.startswith("Reversión de pago: Cheque devuelto (deshecho US$100.00")
    assert lines[2].charge == Decimal("120.00") and [line.on for line in before] == [
        lines_all[0].on
    ]


def test_statement_runs_two_sql_statements_with_a_period_and_one_without(history):
    org, _, account = history
    executed = []

    def count(*_):
        executed.append(1)

    with factories.scoped(org.organization_id):
        db.session.execute(sa.text("SELECT 1"))  # the transaction and its scope are set
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            statement_lines(account.credit_account_id, start=clock.today(), end=None)
            with_period = len(executed)
            statement_lines(account.credit_account_id, start=None, end=None)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    assert with_period == 2 and len(executed) == 3


def _aging_rows_stored(org) -> dict:
    """credit_account_aging as stored: account id -> (computed_on, buckets..., total)."""
    with factories.scoped(org.organization_id):
        rows = db.session.execute(
            sa.text(
                "SELECT credit_account_id, computed_on, not_due, days_1_30, days_31_60, "
                "days_61_90, days_90_plus, total FROM credit_account_aging"
            )
        ).all()
        db.session.rollback()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_every_ledger_write_keeps_the_account_aging_row(org_a):
    staff = org_a.users["credit_staff"]
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    account_id = account.credit_account_id

    def total():
        row = _aging_rows_stored(org_a).get(account_id)
        assert row is None or row[0] == clock.today()  # computed today by the write itself
        return row and row[-1]

    with factories.scoped(org_a.organization_id):
        usage_charge(
            account_id=account_id, order_id=uuid.uuid4(), amount=Decimal("100.00"), actor=staff
        )
        db.session.commit()
    assert total() == Decimal("100.00")
    with factories.scoped(org_a.organization_id):
        second, _ = usage_charge(
            account_id=account_id, order_id=uuid.uuid4(), amount=Decimal("40.00"), actor=staff
        )
        db.session.commit()
        payment, _ = payment_record(
            account_id=account_id,
            amount=Decimal("30.00"),
            method="cash",
            reference=None,
            payment_date=clock.today(),
            key=uuid.uuid4(),
            actor=staff,
        )
        db.session.commit()
        payment_id, second_id = payment.payment_id, second.usage_id
    assert total() == Decimal("110.00")
    with factories.scoped(org_a.organization_id):
        payment_reverse(payment_id=payment_id, reason="Cheque devuelto", actor=staff)
        db.session.commit()
    assert total() == Decimal("140.00")
    with factories.scoped(org_a.organization_id):
        usage_cancel(usage_id=second_id, actor=staff)
        db.session.commit()
    assert total() == Decimal("100.00")
    with factories.scoped(org_a.organization_id):
        payment_record(
            account_id=account_id,
            amount=Decimal("100.00"),
            method="transfer",
            reference="TRF-1",
            payment_date=clock.today(),
            key=uuid.uuid4(),
            actor=staff,
        )
        db.session.commit()
    assert total() is None  # nothing outstanding: no row


def test_aging_rows_of_an_earlier_day_are_recomputed_from_the_ledger(portfolio):
    """Until the daily job moves them, rows computed on an earlier day are not trusted: the
    report recomputes those accounts from the ledger, and the job restores the rows."""
    org, _ = portfolio
    with factories.scoped(org.organization_id):
        totals, rows = aging_summary(), [tuple(row) for row in aging_rows()]
    stored = _aging_rows_stored(org)
    assert {row[0] for row in stored.values()} == {clock.today()}
    with factories.scoped(org.organization_id):  # yesterday's rows, with wrong amounts
        db.session.execute(
            sa.text(
                "UPDATE credit_account_aging SET computed_on = computed_on - 1, "
                "not_due = 999, days_1_30 = 0, days_31_60 = 0, days_61_90 = 0, days_90_plus = 0"
            )
        )
        db.session.commit()
        assert aging_summary() == totals
        assert [tuple(row) for row in aging_rows()] == rows
        assert aging_refresh_stale() == len(stored)
        assert aging_refresh_stale() == 0  # once per day
        assert aging_summary() == totals  # the kept totals again, yesterday's rows gone
        days = db.session.scalars(sa.text("SELECT DISTINCT computed_on FROM credit_aging_totals"))
        assert list(days) == [clock.today()]
    assert _aging_rows_stored(org) == stored


def test_aging_as_of_another_day_moves_the_buckets(portfolio):
    org, _ = portfolio
    with factories.scoped(org.organization_id):
        today = aging_summary()
        later = aging_summary(today=clock.today() + timedelta(days=30))
    assert later["total"] == today["total"]
    assert later["not_due"] == Decimal("0.00") and later["days_90_plus"] > today["days_90_plus"]


def _dated(org_a):
    """Three accounts whose ledger happened over the last two months (dates moved back after
    the services wrote it): charges, a cancellation, payments and a reversal."""
    staff, approver = org_a.users["credit_staff"], org_a.users["credit_approver"]
    today = clock.today()
    days_ago = lambda days: today - timedelta(days=days)  # noqa: E731
    accounts = []
    for name in ("Alba", "Bruno", "Celia"):
        customer = factories.customer_create(
            org_a.organization_id, first_name=name, last_name="Histórico"
        )
        account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
        accounts.append(account.credit_account_id)
    alba, bruno, celia = accounts
    with factories.scoped(org_a.organization_id):
        charges = {}
        for key, account_id, amount in (
            ("old", alba, "100.00"),
            ("recent", alba, "50.00"),
            ("cancelled", bruno, "80.00"),
            ("after", celia, "200.00"),
        ):
            usage, _ = usage_charge(
                account_id=account_id, order_id=uuid.uuid4(), amount=Decimal(amount), actor=staff
            )
            charges[key] = usage.usage_id
            db.session.commit()
        moved = {  # created, due
            "old": (60, 30),
            "recent": (20, -10),
            "cancelled": (40, 10),
            "after": (5, -25),
        }
        for key, (created, due) in moved.items():
            db.session.execute(
                sa.update(CreditUsage)
                .where(CreditUsage.usage_id == charges[key])
                .values(
                    created_at=CreditUsage.created_at - timedelta(days=created),
                    due_date=days_ago(due),
                )
            )
        db.session.execute(  # opened before the history began
            sa.text(
                "UPDATE credit_accounts SET created_at = created_at - interval '90 days'"
                " WHERE credit_account_id = ANY(:ids)"
            ),
            {"ids": accounts},
        )
        db.session.commit()
        usage_cancel(usage_id=charges["cancelled"], actor=staff)
        db.session.commit()
        payment_record(
            account_id=alba,
            amount=Decimal("70.00"),
            method="cash",
            reference=None,
            payment_date=days_ago(25),
            key=uuid.uuid4(),
            actor=staff,
        )
        second, _ = payment_record(
            account_id=alba,
            amount=Decimal("30.00"),
            method="check",
            reference="Cheque 12",
            payment_date=days_ago(5),
            key=uuid.uuid4(),
            actor=staff,
        )
        db.session.commit()
        payment_reverse(payment_id=second.payment_id, reason="Cheque devuelto", actor=approver)
        db.session.commit()
        db.session.execute(
            sa.text(
                "UPDATE credit_usages SET cancelled_at = cancelled_at - interval '15 days'"
                " WHERE usage_id = :id"
            ),
            {"id": charges["cancelled"]},
        )
        db.session.execute(
            sa.text(
                "UPDATE credit_payments SET reversed_at = reversed_at - interval '2 days'"
                " WHERE payment_id = :id"
            ),
            {"id": second.payment_id},
        )
        db.session.commit()
    return accounts


def test_aging_as_of_a_past_day_equals_the_statements_as_of_that_day(org_a, login_as):
    accounts = _dated(org_a)
    as_of = clock.today() - timedelta(days=10)
    with factories.scoped(org_a.organization_id):
        totals = aging_summary(today=as_of)
        rows = {row.credit_account_id: row for row in aging_rows(today=as_of)}
        closings = {
            account: statement_lines(account, start=None, end=as_of)[2] for account in accounts
        }
        now = aging_summary()
    alba = accounts[0]
    # Alba owed 30 of the old charge (20 days late) and the recent 50 (not due yet); the
    # cheque dated 5 days ago did not exist then. Bruno's charge was cancelled by then, Celia's
    # not made yet.
    assert list(rows) == [alba]
    assert (rows[alba].days_1_30, rows[alba].not_due, rows[alba].total) == (
        Decimal("30.00"),
        Decimal("50.00"),
        Decimal("80.00"),
    )
    assert totals["total"] == sum(closings.values(), Decimal(0)) == Decimal("80.00")
    assert closings[accounts[1]] == closings[accounts[2]] == Decimal("0.00")
    assert now["total"] == Decimal("280.00")  # today: 80 of Alba's, Celia's 200
    page = login_as("credit_staff").get(f"/credit/aging?as_of={as_of.isoformat()}").text
    assert 'id="aging-total">US$80.00<' in page and "Alba Histórico" in page
    assert "Celia Histórico" not in page
    csv_text = (
        login_as("credit_staff")
        .get(f"/credit/aging?as_of={as_of.isoformat()}&format=csv")
        .get_data(as_text=True)
    )
    assert "Alba Histórico" in csv_text and "Celia Histórico" not in csv_text


@pytest.mark.parametrize(
    ("as_of", "error"),
    [
        ("2999-01-01", "La fecha no puede ser posterior a hoy."),
        ("31/10/2026", "No es una fecha válida."),
        ("x" * 5000, "No es una fecha válida."),
    ],
)
def test_aging_as_of_a_bad_day_says_so_and_shows_today(history, login_as, as_of, error):
    response = login_as("credit_staff").get("/credit/aging", query_string={"as_of": as_of})
    assert response.status_code == 200
    assert 'id="aging-total">US$230.00<' in response.text
    assert "field-error" in response.text and error in response.text
