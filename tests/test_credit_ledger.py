"""The ledger: charges never overspend, payments are allocated FIFO and post once, nothing is lost.

After every operation the invariant holds:
credit_used = sum over pending/overdue usages of (amount - allocated), and available >= 0.
"""

import threading
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal import clock
from portal.credit.models import CreditAccount, CreditPaymentAllocation, CreditUsage
from portal.credit.selectors import ledger_outstanding
from portal.credit.services import (
    CreditError,
    account_get,
    payment_record,
    payment_reverse,
    usage_cancel,
    usage_charge,
)
from portal.extensions import db
from tests import factories

D = Decimal


@pytest.fixture
def ledger(org_a):
    """An approved US$1,000 account at 30 days for an active customer of org A."""
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    return org_a, customer, account


def assert_invariant(organization_id, account_id):
    with factories.scoped(organization_id):
        account = account_get(account_id)
        assert account.credit_used == ledger_outstanding(account_id)
        assert account.credit_available == account.credit_limit - account.credit_used >= 0


def _detached(row):
    db.session.refresh(row)
    db.session.expunge(row)
    return row


def charge(org, account, amount, order=None, actor=None):
    with factories.scoped(org.organization_id):
        usage, created = usage_charge(
            account_id=account.credit_account_id,
            order_id=order or uuid.uuid4(),
            amount=D(amount),
            actor=actor,
        )
        db.session.commit()
        return _detached(usage), created


def pay(org, account, amount, key=None, on=None):
    with factories.scoped(org.organization_id):
        payment, created = payment_record(
            account_id=account.credit_account_id,
            amount=D(amount),
            method="cash",
            reference=None,
            payment_date=on or clock.today(),
            key=key or uuid.uuid4(),
            actor=None,
        )
        db.session.commit()
        return _detached(payment), created


def usages(org, account) -> list[CreditUsage]:
    with factories.scoped(org.organization_id):
        rows = list(
            db.session.scalars(
                sa.select(CreditUsage)
                .where(CreditUsage.credit_account_id == account.credit_account_id)
                .order_by(CreditUsage.due_date, CreditUsage.created_at)
            )
        )
        for row in rows:
            db.session.expunge(row)
        return rows


def used(org, account) -> Decimal:
    with factories.scoped(org.organization_id):
        return account_get(account.credit_account_id).credit_used


def test_charge_sets_due_date_from_terms_and_uses_credit(ledger):
    org, _, account = ledger
    usage, created = charge(org, account, "250.40", actor=org.users["credit_staff"])
    assert created and usage.status == "pending"
    assert usage.due_date == clock.today() + timedelta(days=30)
    assert used(org, account) == D("250.40")
    assert_invariant(org.organization_id, account.credit_account_id)


def test_same_order_twice_is_charged_once(ledger):
    org, _, account = ledger
    order = uuid.uuid4()
    first, created = charge(org, account, "100", order)
    again, created_again = charge(org, account, "100", order)
    assert created and not created_again and again.usage_id == first.usage_id
    assert used(org, account) == D("100")
    with pytest.raises(CreditError, match="otro monto"):
        charge(org, account, "99", order)
    assert used(org, account) == D("100")
    assert_invariant(org.organization_id, account.credit_account_id)


@pytest.mark.parametrize(
    "setup, reason",
    [
        (
            "over_limit",
            "Crédito disponible insuficiente: disponible US$1,000.00, solicitado US$1,000.01",
        ),
        ("suspended", "suspendida"),
        ("pending", "pendiente"),
        ("blocked", "Cliente bloqueado"),
        ("inactive", "inactivo"),
        ("overdue", "Retención por mora"),
    ],
)
def test_refused_charges_say_why_and_change_nothing(ledger, setup, reason):
    org, _, account = ledger
    amount = "1000.01" if setup == "over_limit" else "10"
    with factories.scoped(org.organization_id):
        if setup in ("suspended", "pending"):
            db.session.execute(sa.update(CreditAccount).values(status=setup))
        if setup == "pending":  # a pending account has its request (checked at commit)
            from portal.credit.models import CreditRequest

            db.session.add(
                CreditRequest(
                    credit_account_id=account.credit_account_id,
                    kind="new_line",
                    requested_limit=D("1000"),
                    requested_term_days=30,
                    reason="Solicitud de prueba",
                    requested_by=org.users["branch_staff"].staff_user_id,
                )
            )
        if setup in ("blocked", "inactive"):
            from portal.customers.models import Customer

            db.session.execute(sa.update(Customer).values(status=setup))
        if setup == "overdue":
            db.session.add(
                CreditUsage(
                    credit_account_id=account.credit_account_id,
                    order_id=uuid.uuid4(),
                    amount=D("5"),
                    status="overdue",
                    due_date=date(2020, 1, 1),
                )
            )
            db.session.execute(sa.update(CreditAccount).values(credit_used=D("5")))
        db.session.commit()
    before = used(org, account)
    with pytest.raises(CreditError) as refused:
        charge(org, account, amount)
    assert reason in str(refused.value)
    assert used(org, account) == before
    assert len(usages(org, account)) == (1 if setup == "overdue" else 0)
    assert_invariant(org.organization_id, account.credit_account_id)


def test_cancelling_a_pending_charge_gives_the_credit_back(ledger):
    org, _, account = ledger
    usage, _ = charge(org, account, "300")
    with factories.scoped(org.organization_id):
        cancelled = usage_cancel(usage_id=usage.usage_id, actor=None)
        assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
        db.session.commit()
    assert used(org, account) == 0
    with pytest.raises(CreditError), factories.scoped(org.organization_id):
        usage_cancel(usage_id=usage.usage_id, actor=None)  # twice: refused, nothing changes
    assert used(org, account) == 0
    assert_invariant(org.organization_id, account.credit_account_id)


def test_a_partly_paid_charge_cannot_be_cancelled(ledger):
    org, _, account = ledger
    usage, _ = charge(org, account, "300")
    pay(org, account, "100")
    with (
        pytest.raises(CreditError, match="sin pagos aplicados"),
        factories.scoped(org.organization_id),
    ):
        usage_cancel(usage_id=usage.usage_id, actor=None)
    assert used(org, account) == D("200")


def test_payment_is_allocated_to_the_oldest_due_first_with_partial_allocation(ledger):
    org, _, account = ledger
    first, _ = charge(org, account, "100")
    second, _ = charge(org, account, "200")
    third, _ = charge(org, account, "300")
    with factories.scoped(org.organization_id):  # make the third one the oldest due
        db.session.execute(
            sa.update(CreditUsage)
            .where(CreditUsage.usage_id == third.usage_id)
            .values(due_date=clock.today() + timedelta(days=1))
        )
        db.session.commit()
    payment, created = pay(org, account, "350")
    assert created
    with factories.scoped(org.organization_id):
        allocations = {
            row.usage_id: row.amount
            for row in db.session.scalars(
                sa.select(CreditPaymentAllocation).where(
                    CreditPaymentAllocation.payment_id == payment.payment_id
                )
            )
        }
    assert allocations == {third.usage_id: D("300"), first.usage_id: D("50")}
    states = {usage.usage_id: usage for usage in usages(org, account)}
    assert states[third.usage_id].status == "paid" and states[third.usage_id].paid_at is not None
    assert (
        states[first.usage_id].status == "pending" and states[second.usage_id].status == "pending"
    )
    assert used(org, account) == D("250")
    assert_invariant(org.organization_id, account.credit_account_id)


def test_overpayment_is_refused_with_the_amount_owed(ledger):
    org, _, account = ledger
    charge(org, account, "120.50")
    with pytest.raises(CreditError, match=r"el saldo es US\$120.50"):
        pay(org, account, "120.51")
    assert used(org, account) == D("120.50")
    assert_invariant(org.organization_id, account.credit_account_id)


def test_payment_with_the_same_key_posts_once_and_a_reused_key_with_another_amount_is_refused(
    ledger,
):
    org, _, account = ledger
    charge(org, account, "500")
    key = uuid.uuid4()
    first, created = pay(org, account, "100", key)
    again, created_again = pay(org, account, "100", key)
    assert created and not created_again and again.payment_id == first.payment_id
    with pytest.raises(CreditError, match="otros datos"):
        pay(org, account, "150", key)
    assert used(org, account) == D("400")
    assert_invariant(org.organization_id, account.credit_account_id)


@pytest.mark.parametrize("on", [date(2999, 1, 1), date(1999, 1, 1)])
def test_payment_dates_in_the_future_or_before_the_account_are_refused(ledger, on):
    org, _, account = ledger
    charge(org, account, "50")
    with pytest.raises(CreditError, match="fecha"):
        pay(org, account, "10", on=on)
    assert used(org, account) == D("50")


def test_reversal_restores_what_the_payment_allocated(ledger):
    org, _, account = ledger
    charge(org, account, "100")
    charge(org, account, "100")
    payment, _ = pay(org, account, "150")
    with factories.scoped(org.organization_id):
        reversed_payment = payment_reverse(
            payment_id=payment.payment_id,
            reason="Cheque devuelto",
            actor=org.users["credit_approver"],
        )
        assert reversed_payment.reversed_at is not None
        db.session.commit()
    assert {usage.status for usage in usages(org, account)} == {"pending"}
    assert used(org, account) == D("200")
    assert_invariant(org.organization_id, account.credit_account_id)
    with (
        pytest.raises(CreditError, match="ya fue revertido"),
        factories.scoped(org.organization_id),
    ):
        payment_reverse(
            payment_id=payment.payment_id, reason="otra vez", actor=org.users["credit_approver"]
        )
    assert used(org, account) == D("200")


def test_fifty_parallel_charges_never_exceed_the_limit(app, ledger):
    org, _, account = ledger
    barrier = threading.Barrier(50)
    outcomes = []

    def attempt():
        try:
            barrier.wait(timeout=30)
            charge(org, account, "30.00")
            outcomes.append("charged")
        except CreditError:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 50
    assert outcomes.count("charged") == 33  # 33 x 30 = 990 <= 1000 < 34 x 30
    assert used(org, account) == D("990.00")
    assert len(usages(org, account)) == 33
    assert_invariant(org.organization_id, account.credit_account_id)


def test_two_parallel_payments_with_the_same_key_post_once(ledger):
    org, _, account = ledger
    charge(org, account, "500")
    key = uuid.uuid4()
    barrier = threading.Barrier(2)
    results = []

    def attempt():
        barrier.wait(timeout=30)
        results.append(pay(org, account, "200", key))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(created for _, created in results) == [False, True]
    assert len({payment.payment_id for payment, _ in results}) == 1
    assert used(org, account) == D("300")
    assert_invariant(org.organization_id, account.credit_account_id)
