"""A reversal keeps the payment's allocations and records its own rows: history is never lost."""

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import ProgrammingError

from portal import clock
from portal.credit.models import CreditPaymentAllocation, CreditUsage
from portal.credit.selectors import ledger_outstanding
from portal.credit.services import account_get
from portal.extensions import db
from tests import factories

HTMX = {"HX-Request": "true"}


@pytest.fixture
def paid(login_as, org_a):
    """Two charges (100 and 50) and a payment of 120: 100 to the first, 20 to the second."""
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(org_a.organization_id, customer.customer_id)
    page = f"/credit/accounts/{account.credit_account_id}"
    staff = login_as("credit_staff")
    staff.get(page)
    for amount in ("100.00", "50.00"):
        order = factories.order_number(org_a.organization_id, customer.customer_id)
        staff.post(f"{page}/usages", {"order_number": order, "amount": amount})
    staff.post(
        f"{page}/payments",
        {
            "amount": "120.00",
            "payment_method": "check",
            "payment_reference": "Cheque 881",
            "payment_date": clock.today().isoformat(),
            "idempotency_key": str(uuid.uuid4()),
        },
    )
    with factories.scoped(org_a.organization_id):
        payment_id = db.session.scalar(sa.select(CreditPaymentAllocation.payment_id).limit(1))
    return staff, account, page, payment_id


def _allocations(org):
    with factories.scoped(org.organization_id):
        return [
            (row.allocation_id, row.usage_id, row.amount, row.reverses_allocation_id)
            for row in db.session.scalars(
                sa.select(CreditPaymentAllocation).order_by(
                    CreditPaymentAllocation.created_at, CreditPaymentAllocation.amount.desc()
                )
            )
        ]


def _invariant(org, account) -> Decimal:
    with factories.scoped(org.organization_id):
        current = account_get(account.credit_account_id)
        assert current.credit_used == ledger_outstanding(account.credit_account_id)
        assert current.credit_available == current.credit_limit - current.credit_used >= 0
        return current.credit_used


def _reverse(login_as, page, payment_id, reason="Cheque devuelto"):
    approver = login_as("credit_approver")
    approver.get(page)
    return approver.post(
        f"/credit/payments/{payment_id}/reverse", {"reversal_reason": reason}, headers=HTMX
    )


def test_reversal_keeps_the_allocations_and_adds_its_own_rows(login_as, org_a, paid):
    _, account, page, payment_id = paid
    original = _allocations(org_a)
    assert sorted(amount for _, _, amount, _ in original) == [Decimal("20.00"), Decimal("100.00")]
    assert _invariant(org_a, account) == Decimal("30.00")

    response = _reverse(login_as, page, payment_id)
    assert response.status_code == 200 and "revertido." in response.text

    after = _allocations(org_a)
    assert after[: len(original)] == original  # nothing deleted or changed
    reversals = after[len(original) :]
    assert {(usage, -amount, reverses) for _, usage, amount, reverses in reversals} == {
        (usage, amount, allocation) for allocation, usage, amount, _ in original
    }
    assert _invariant(org_a, account) == Decimal("150.00")
    with factories.scoped(org_a.organization_id):
        assert set(db.session.scalars(sa.select(CreditUsage.status))) == {"pending"}


def test_the_account_and_the_statement_show_what_was_paid_and_when_it_was_undone(
    login_as, org_a, paid
):
    staff, _, page, payment_id = paid
    _reverse(login_as, page, payment_id)
    ledger = staff.get(page).text
    assert ledger.count('class="allocation"') == 2
    assert ledger.count('class="allocation-reversed"') == 2
    assert "US$100.00 → orden" in ledger and "-US$100.00 ← orden" in ledger
    assert "Revertido el" in ledger and "Cheque devuelto" in ledger
    assert "Pago revertido · Cheque" in ledger
    statement = staff.get(f"{page}/statement").text
    assert "US$100.00 a orden" in statement and "US$20.00 a orden" in statement
    assert "Pago revertido check" not in statement
    assert "Pago revertido Cheque" in statement
    assert "Reversión de pago: Cheque devuelto (deshecho US$100.00 de orden" in statement
    assert 'id="closing-balance">US$150.00<' in statement
    csv = staff.get(f"{page}/statement?format=csv").text
    assert "US$20.00 de orden" in csv and "deshecho US$100.00 de orden" in csv
    assert "Pago revertido Cheque" in csv


def test_after_a_reversal_payments_and_cancellations_use_what_is_still_applied(
    login_as, org_a, paid
):
    staff, account, page, payment_id = paid
    _reverse(login_as, page, payment_id)
    again = staff.post(
        f"{page}/payments",
        {
            "amount": "150.00",
            "payment_method": "cash",
            "payment_date": clock.today().isoformat(),
            "idempotency_key": str(uuid.uuid4()),
        },
        headers=HTMX,
    )
    assert again.status_code == 200 and "registrado." in again.text
    assert _invariant(org_a, account) == Decimal("0.00")
    with factories.scoped(org_a.organization_id):
        assert set(db.session.scalars(sa.select(CreditUsage.status))) == {"paid"}
    assert _reverse(login_as, page, payment_id).status_code == 422  # already reversed
    assert _invariant(org_a, account) == Decimal("0.00")


def test_a_charge_whose_payment_was_reversed_can_be_cancelled(login_as, org_a, paid):
    staff, account, page, payment_id = paid
    _reverse(login_as, page, payment_id)
    with factories.scoped(org_a.organization_id):
        usage_id = db.session.scalar(
            sa.select(CreditUsage.usage_id).where(CreditUsage.amount == Decimal("50.00"))
        )
    staff.get(page)
    cancelled = staff.post(f"/credit/usages/{usage_id}/cancel", headers=HTMX)
    assert cancelled.status_code == 200 and "anulado; el crédito" in cancelled.text
    assert _invariant(org_a, account) == Decimal("100.00")


def test_the_app_role_cannot_delete_or_forge_allocations(org_a, paid):
    _, _, _, payment_id = paid
    with (
        factories.scoped(org_a.organization_id),
        pytest.raises(ProgrammingError, match="permission denied"),
    ):
        db.session.execute(sa.delete(CreditPaymentAllocation))
    with factories.scoped(org_a.organization_id):
        allocation = db.session.scalars(sa.select(CreditPaymentAllocation)).first()
        from sqlalchemy.exc import IntegrityError

        with pytest.raises(IntegrityError):  # a negative row must undo an allocation of its own
            db.session.execute(
                sa.insert(CreditPaymentAllocation).values(
                    organization_id=org_a.organization_id,
                    allocation_id=uuid.uuid4(),
                    payment_id=payment_id,
                    usage_id=uuid.uuid4(),
                    amount=-allocation.amount,
                    reverses_allocation_id=allocation.allocation_id,
                )
            )
    assert len(_allocations(org_a)) == 2
