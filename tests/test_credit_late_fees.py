"""Late fees: off by default; under the organization's rule the nightly job posts one fee per
account and month (a fixed amount or a percentage of the overdue order charges, after the grace
days, at most the cap and the credit available), audited; approvers waive a fee or exempt an
account, audited; the statement and the ledger name fees; another organization reaches none."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.credit.jobs import overdue_mark
from portal.credit.services import usage_charge
from portal.db import organization_scope
from portal.extensions import db
from portal.settings.services import organization_settings_update
from tests import factories
from tests.test_collections import HTMX

DUE = date(2026, 9, 10)


def _rule(org, **rule) -> None:
    with factories.scoped(org.organization_id):
        organization_settings_update(actor=org.users["org_admin"], **rule)
        db.session.commit()


def _account(org, name: str, *, amount="120.00", limit="1000.00", due=DUE) -> uuid.UUID:
    """An account owing `amount` for an order, due on `due` (its customer: `_customers[id]`)."""
    customer = factories.customer_create(org.organization_id, first_name=name)
    account = factories.credit_account_create(
        org.organization_id, customer.customer_id, credit_limit=Decimal(limit)
    )
    with factories.scoped(org.organization_id):
        usage, _ = usage_charge(
            account_id=account.credit_account_id,
            order_id=uuid.uuid4(),
            amount=Decimal(amount),
            actor=org.users["credit_staff"],
        )
        usage.due_date = due
        db.session.commit()
    _customers[account.credit_account_id] = customer.customer_id
    return account.credit_account_id


_customers: dict = {}


def _signed_in(login_as, role: str, **kwargs):
    """A client of the role that has seen a page (it carries that session's CSRF token)."""
    client = login_as(role, **kwargs)
    client.get("/")
    return client


def _night(app, org, day: date) -> dict:
    with clock.pinned(day), app.app_context(), organization_scope(org.organization_id):
        return overdue_mark()


def _fees(org, account_id) -> list:
    with factories.scoped(org.organization_id):
        return db.session.execute(
            sa.text(
                "SELECT usage_id, fee_period, amount, status, due_date FROM credit_usages"
                " WHERE credit_account_id = :a AND kind = 'late_fee' ORDER BY fee_period"
            ),
            {"a": account_id},
        ).all()


def _used(org, account_id) -> Decimal:
    with factories.scoped(org.organization_id):
        return db.session.scalar(
            sa.text("SELECT credit_used FROM credit_accounts WHERE credit_account_id = :a"),
            {"a": account_id},
        )


def test_no_fee_while_the_rule_is_off(app, org_a):
    account_id = _account(org_a, "Ana")
    assert _night(app, org_a, DUE + timedelta(days=40))["late_fees"] == 0
    assert _fees(org_a, account_id) == []


def test_sixty_nights_post_one_fixed_fee_per_month_after_the_grace_days(app, org_a):
    _rule(org_a, late_fee_mode="fixed", late_fee_amount=Decimal("5.00"), late_fee_grace_days=5)
    account_id = _account(org_a, "Ana")
    paid_up = _account(org_a, "Beto", due=DUE + timedelta(days=365))  # never late
    posted = [_night(app, org_a, DUE + timedelta(days=n))["late_fees"] for n in range(61)]
    # Day 6 is the first past the grace days (September); October and November once each.
    assert sum(posted) == 3 and posted[5] == 0 and posted[6] == 1
    fees = _fees(org_a, account_id)
    assert [fee.fee_period for fee in fees] == [
        date(2026, 9, 1),
        date(2026, 10, 1),
        date(2026, 11, 1),
    ]
    assert {fee.amount for fee in fees} == {Decimal("5.00")}
    assert fees[0].due_date == DUE + timedelta(days=6)  # due the day it is posted
    assert _used(org_a, account_id) == Decimal("135.00")
    assert _fees(org_a, paid_up) == []
    entries = [
        entry
        for entry in factories.audit_entries(org_a.organization_id, account_id)
        if entry.action == "credit.late_fee_posted"
    ]
    assert len(entries) == 3 and entries[0].after["amount"] == "5.00"
    assert entries[0].after["fee_period"] == "2026-09-01"


def test_a_percentage_is_of_overdue_orders_only_and_capped(app, org_a):
    _rule(org_a, late_fee_mode="percent", late_fee_percent=Decimal("2.5"), late_fee_cap=None)
    account_id = _account(org_a, "Ana", amount="200.00")
    _night(app, org_a, DUE + timedelta(days=30))  # 2.5 % of 200.00
    _night(app, org_a, DUE + timedelta(days=60))  # again of 200.00: never of the first fee
    assert [fee.amount for fee in _fees(org_a, account_id)] == [Decimal("5.00")] * 2
    _rule(org_a, late_fee_cap=Decimal("3.00"))
    _night(app, org_a, DUE + timedelta(days=90))
    assert _fees(org_a, account_id)[-1].amount == Decimal("3.00")


def test_a_fee_never_takes_an_account_over_its_limit(app, org_a):
    _rule(org_a, late_fee_mode="fixed", late_fee_amount=Decimal("10.00"))
    almost = _account(org_a, "Ana", amount="998.50")
    full = _account(org_a, "Beto", amount="1000.00")
    _night(app, org_a, DUE + timedelta(days=3))
    assert [fee.amount for fee in _fees(org_a, almost)] == [Decimal("1.50")]
    assert _used(org_a, almost) == Decimal("1000.00")
    assert _fees(org_a, full) == []


def test_a_second_run_the_same_night_posts_nothing(app, org_a):
    _rule(org_a, late_fee_mode="fixed", late_fee_amount=Decimal("5.00"))
    account_id = _account(org_a, "Ana")
    day = DUE + timedelta(days=3)
    assert _night(app, org_a, day)["late_fees"] == 1
    assert _night(app, org_a, day)["late_fees"] == 0
    assert len(_fees(org_a, account_id)) == 1 and _used(org_a, account_id) == Decimal("125.00")


def test_an_approver_waives_a_fee_audited_and_it_is_not_posted_again(app, login_as, org_a):
    _rule(org_a, late_fee_mode="fixed", late_fee_amount=Decimal("5.00"))
    account_id = _account(org_a, "Ana")
    day = DUE + timedelta(days=3)
    _night(app, org_a, day)
    [fee] = _fees(org_a, account_id)
    approver = _signed_in(login_as, "credit_approver")
    page = approver.get(f"/credit/accounts/{account_id}")
    assert "Recargo por mora 09/2026" in page.text and "Condonar" in page.text
    refused = approver.post(f"/credit/usages/{fee.usage_id}/waive", headers=HTMX)
    assert refused.status_code == 422 and "Indique motivo de la condonación" in refused.text
    staff = _signed_in(login_as, "credit_staff")
    assert (
        staff.post(
            f"/credit/usages/{fee.usage_id}/waive", {"waiver_reason": "Cliente fiel"}
        ).status_code
        == 403
    )
    waived = approver.post(
        f"/credit/usages/{fee.usage_id}/waive", {"waiver_reason": "Cliente fiel"}, headers=HTMX
    )
    assert waived.status_code == 200
    assert "Recargo por mora de Ana" in waived.text and "condonado (US$5.00)" in waived.text
    assert _fees(org_a, account_id)[0].status == "cancelled"
    assert _used(org_a, account_id) == Decimal("120.00")
    [entry] = [
        entry
        for entry in factories.audit_entries(org_a.organization_id, account_id)
        if entry.action == "credit.late_fee_waived"
    ]
    assert entry.actor_id == org_a.users["credit_approver"].staff_user_id
    assert entry.after["reason"] == "Cliente fiel"
    again = approver.post(
        f"/credit/usages/{fee.usage_id}/waive", {"waiver_reason": "Otra vez"}, headers=HTMX
    )
    assert again.status_code == 422  # already waived: nothing changes
    assert _night(app, org_a, day + timedelta(days=1))["late_fees"] == 0  # same month
    timeline = approver.get(f"/customers/{_customers[account_id]}/timeline?kind=credit").text
    assert "Recargo por mora condonado" in timeline and "Motivo: Cliente fiel" in timeline
    assert "Monto: US$5.00 sobre US$120.00 vencido" in timeline
    statement = approver.get(f"/credit/accounts/{account_id}/statement").text
    assert "Recargo por mora 09/2026 (condonado)" in statement
    assert "Condonación recargo por mora 09/2026" in statement


def test_a_paid_fee_is_not_waived_and_an_order_charge_is_not_a_fee(app, login_as, org_a):
    _rule(org_a, late_fee_mode="fixed", late_fee_amount=Decimal("5.00"))
    account_id = _account(org_a, "Ana")
    _night(app, org_a, DUE + timedelta(days=3))
    [fee] = _fees(org_a, account_id)
    staff = _signed_in(login_as, "credit_staff")
    paid = staff.post(
        f"/credit/accounts/{account_id}/payments",
        {
            "amount": "125.00",
            "payment_method": "cash",
            "payment_date": clock.today().isoformat(),
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    assert paid.status_code == 303
    approver = _signed_in(login_as, "credit_approver")
    refused = approver.post(
        f"/credit/usages/{fee.usage_id}/waive", {"waiver_reason": "Tarde"}, headers=HTMX
    )
    assert refused.status_code == 422 and "sin pagos aplicados" in refused.text
    with factories.scoped(org_a.organization_id):
        order_usage = db.session.scalar(
            sa.text(
                "SELECT usage_id FROM credit_usages WHERE kind = 'order' AND credit_account_id = :a"
            ),
            {"a": account_id},
        )
    assert (
        approver.post(f"/credit/usages/{order_usage}/waive", {"waiver_reason": "No"}).status_code
        == 404
    )
    # Nor is a fee cancelled as an order charge is.
    assert (
        "recargo por mora"
        in staff.post(f"/credit/usages/{fee.usage_id}/cancel", headers=HTMX).text.lower()
    )


def test_an_exempt_account_gets_no_fee(app, login_as, org_a):
    _rule(org_a, late_fee_mode="fixed", late_fee_amount=Decimal("5.00"))
    exempt = _account(org_a, "Ana")
    charged = _account(org_a, "Beto")
    approver = _signed_in(login_as, "credit_approver")
    assert (
        _signed_in(login_as, "credit_staff")
        .post(
            f"/credit/accounts/{exempt}/late-fees", {"exempt": "1", "exemption_reason": "Convenio"}
        )
        .status_code
        == 403
    )
    done = approver.post(
        f"/credit/accounts/{exempt}/late-fees",
        {"exempt": "1", "exemption_reason": "Convenio de pago"},
        headers=HTMX,
    )
    assert done.status_code == 200 and "Cuenta de Ana " in done.text
    assert "exonerada de recargos por mora." in done.text
    assert "Quitar exoneración de recargos" in done.text
    assert _night(app, org_a, DUE + timedelta(days=3))["late_fees"] == 1
    assert _fees(org_a, exempt) == [] and len(_fees(org_a, charged)) == 1
    [entry] = [
        entry
        for entry in factories.audit_entries(org_a.organization_id, exempt)
        if entry.action == "credit.late_fees_exemption"
    ]
    assert entry.after == {"late_fees_exempt": True, "reason": "Convenio de pago"}
    bad = approver.post(
        f"/credit/accounts/{exempt}/late-fees", {"exempt": "maybe", "exemption_reason": "x" * 5000}
    )
    assert bad.status_code in (303, 422)
    ended = approver.post(
        f"/credit/accounts/{exempt}/late-fees",
        {"exempt": "0", "exemption_reason": "Fin del convenio"},
        headers=HTMX,
    )
    assert "vuelve a generar recargos" in ended.text
    assert _night(app, org_a, DUE + timedelta(days=4))["late_fees"] == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"late_fee_mode": "fixed"}, "Indique el monto fijo del recargo."),
        ({"late_fee_mode": "percent"}, "Indique el porcentaje mensual del recargo."),
        ({"late_fee_mode": "percent", "late_fee_percent": "11"}, "no puede pasar de 10 %"),
        ({"late_fee_mode": "fixed", "late_fee_amount": "-5"}, "mayor que cero"),
        (
            {"late_fee_mode": "fixed", "late_fee_amount": "5", "late_fee_grace_days": "-1"},
            "Entre 0 y 365",
        ),
        (
            {"late_fee_mode": "fixed", "late_fee_amount": "5", "late_fee_grace_days": "abc"},
            "entero",
        ),
        ({"late_fee_mode": "daily"}, "Opción inválida"),
        ({"late_fee_mode": "fixed", "late_fee_amount": "5", "late_fee_cap": "1e9"}, "números"),
    ],
)
def test_bad_fee_rules_are_refused_and_change_nothing(login_as, org_a, fields, message):
    admin = _signed_in(login_as, "org_admin")
    base = {"max_credit_limit": "50,000.00", "approval_level": "10,000.00"}
    refused = admin.post("/settings/", base | fields)
    assert refused.status_code in (303, 422)
    page = admin.get("/settings/") if refused.status_code == 303 else refused
    assert message.lower() in page.text.lower(), page.text
    with factories.scoped(org_a.organization_id):
        mode = db.session.scalar(sa.text("SELECT late_fee_mode FROM organization_settings"))
    assert mode in (None, "off")


def test_the_settings_page_saves_a_fee_rule(login_as, org_a):
    admin = _signed_in(login_as, "org_admin")
    saved = admin.post(
        "/settings/",
        {
            "max_credit_limit": "50,000.00",
            "approval_level": "10,000.00",
            "late_fee_mode": "percent",
            "late_fee_percent": "1.5",
            "late_fee_grace_days": "10",
            "late_fee_cap": "25.00",
        },
    )
    assert saved.status_code == 303
    page = admin.get("/settings/").text
    assert 'value="1.50"' in page and 'value="10"' in page and 'value="25.00"' in page


def test_another_organization_reaches_no_fee(app, login_as, org_a, org_b):
    _rule(org_a, late_fee_mode="fixed", late_fee_amount=Decimal("5.00"))
    account_id = _account(org_a, "Ana")
    _night(app, org_a, DUE + timedelta(days=3))
    [fee] = _fees(org_a, account_id)
    theirs = _signed_in(login_as, "credit_approver", organization=org_b)
    assert (
        theirs.post(f"/credit/usages/{fee.usage_id}/waive", {"waiver_reason": "Ajeno"}).status_code
        == 404
    )
    assert (
        theirs.post(
            f"/credit/accounts/{account_id}/late-fees", {"exempt": "1", "exemption_reason": "Ajeno"}
        ).status_code
        == 404
    )
    assert _night(app, org_b, DUE + timedelta(days=3))["late_fees"] == 0
    assert _fees(org_a, account_id)[0].status == "pending"
