"""Property-based: any sequence of charges, cancellations, payments, reversals keeps the ledger."""

import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import clock
from portal.credit.selectors import account_payments, account_usages, ledger_outstanding
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

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400"), places=2)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("charge"), amounts),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("pay"), amounts),
        st.tuples(st.just("pay_all"), st.just(None)),
        st.tuples(st.just("reverse"), st.integers(0, 20)),
    ),
    max_size=25,
)


def _apply(account_id, approver, operation, argument) -> None:
    if operation == "charge":
        usage_charge(account_id=account_id, order_id=uuid.uuid4(), amount=argument, actor=None)
    elif operation == "cancel":
        pending = [u for u, *_ in account_usages(account_id) if u.status == "pending"]
        if pending:
            usage_cancel(usage_id=pending[argument % len(pending)].usage_id, actor=None)
    elif operation in ("pay", "pay_all"):
        owed = account_get(account_id).credit_used
        amount = owed if operation == "pay_all" else argument
        if amount > 0:
            payment_record(
                account_id=account_id,
                amount=amount,
                method="transfer",
                reference="prop",
                payment_date=clock.today(),
                key=uuid.uuid4(),
                actor=None,
            )
    elif operation == "reverse":
        live = [p for p, _ in account_payments(account_id) if p.reversed_at is None]
        if live:
            payment_reverse(
                payment_id=live[argument % len(live)].payment_id, reason="prueba", actor=approver
            )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=operations)
def test_ledger_invariant_holds_for_any_sequence(org_a, sequence):
    customer = factories.customer_create(org_a.organization_id)
    account = factories.credit_account_create(
        org_a.organization_id, customer.customer_id, credit_limit=Decimal("1000.00")
    )
    approver = org_a.users["credit_approver"]
    for operation, argument in sequence:
        with factories.scoped(org_a.organization_id):
            try:
                _apply(account.credit_account_id, approver, operation, argument)
                db.session.commit()
            except CreditError:
                db.session.rollback()  # a refusal must leave everything as it was
            current = account_get(account.credit_account_id)
            assert current.credit_used == ledger_outstanding(account.credit_account_id)
            assert Decimal(0) <= current.credit_used <= current.credit_limit
            assert current.credit_available == current.credit_limit - current.credit_used
