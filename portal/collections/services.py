"""Collections writes: assigning accounts to collectors, logging contacts and promises to pay,
settling promises (nightly). Each is one unit of work, audited with its actor."""

import uuid
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from portal import clock
from portal.audit import SYSTEM_ACTOR, Actor, audit_record
from portal.auth.models import StaffUser
from portal.auth.permissions import PERMISSIONS
from portal.collections.models import (
    CollectionAssignment,
    CollectionContact,
    CollectionPromise,
)
from portal.credit.models import CreditAccount, CreditPayment
from portal.customers.models import Customer
from portal.db import current_organization_id
from portal.extensions import db
from portal.transaction import atomic


class CollectionsError(ValueError):
    """A collections action that cannot be done: a Spanish message and the field it concerns."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def account_customer_name(account_id: uuid.UUID) -> str | None:
    """The name of the account's customer (None: no such account in this organization)."""
    return db.session.scalar(
        sa.select(Customer.full_name)
        .join(CreditAccount, CreditAccount.customer_id == Customer.customer_id)
        .where(CreditAccount.credit_account_id == account_id)
    )


@atomic
def assignment_set(
    *, account_ids: list[uuid.UUID], collector_id: uuid.UUID, actor: StaffUser
) -> list[str]:
    """Assign the accounts to the collector (replacing whoever had them); the customers' names."""
    collector = db.session.scalar(
        sa.select(StaffUser).where(StaffUser.staff_user_id == collector_id)
    )
    if (
        collector is None
        or not collector.is_active
        or not collector.has_role(*PERMISSIONS["collections.work"])
    ):
        raise CollectionsError("El cobrador no existe o no puede cobrar.", "collector")
    accounts = db.session.execute(
        sa.select(
            CreditAccount.credit_account_id,
            Customer.full_name,
            CollectionAssignment.collector_id,
        )
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .outerjoin(
            CollectionAssignment,
            CollectionAssignment.credit_account_id == CreditAccount.credit_account_id,
        )
        .where(CreditAccount.credit_account_id.in_(account_ids))
        .order_by(CreditAccount.credit_account_id)
        .with_for_update(of=CreditAccount)
    ).all()
    if len(accounts) != len(set(account_ids)):
        raise CollectionsError("Alguna cuenta ya no existe: recargue la página.", "account_ids")
    db.session.execute(
        insert(CollectionAssignment)
        .values(
            [
                {
                    "organization_id": current_organization_id(),
                    "credit_account_id": account_id,
                    "collector_id": collector_id,
                    "assigned_by": actor.staff_user_id,
                }
                for account_id, _, _ in accounts
            ]
        )
        .on_conflict_do_update(
            index_elements=["organization_id", "credit_account_id"],
            set_={
                "collector_id": collector_id,
                "assigned_by": actor.staff_user_id,
                "assigned_at": sa.func.now(),
            },
        )
    )
    for account_id, _, previous in accounts:
        audit_record(
            action="collections.assigned",
            entity_type="credit_account",
            entity_id=account_id,
            before={"collector_id": previous},
            after={"collector_id": collector_id},
            actor=actor,
        )
    return [name for _, name, _ in accounts]


@atomic
def contact_record(
    *,
    account_id: uuid.UUID,
    channel: str,
    outcome: str,
    note: str | None,
    next_action_on: date | None,
    promise_amount: Decimal | None,
    promise_due_on: date | None,
    actor: Actor,
) -> CollectionContact:
    """Log a contact with the account's customer; outcome `promise` records the promise to pay."""
    today = clock.today()
    if account_customer_name(account_id) is None:
        raise LookupError(account_id)
    if next_action_on is not None and next_action_on < today:
        raise CollectionsError("La próxima acción no puede ser en el pasado.", "next_action_on")
    promised = outcome == "promise"
    if promised and (promise_amount is None or promise_due_on is None):
        raise CollectionsError("Indique el monto y la fecha de la promesa.", "promise_amount")
    if not promised and (promise_amount is not None or promise_due_on is not None):
        raise CollectionsError(
            "El monto y la fecha solo van con el resultado «Promesa de pago».", "outcome"
        )
    if promised and promise_due_on < today:
        raise CollectionsError("La fecha prometida no puede ser en el pasado.", "promise_due_on")
    contact = CollectionContact(
        credit_account_id=account_id,
        channel=channel,
        outcome=outcome,
        note=note,
        next_action_on=next_action_on or (promise_due_on if promised else None),
        created_by=actor.staff_user_id,
    )
    db.session.add(contact)
    db.session.flush()
    after = {
        "channel": channel,
        "outcome": outcome,
        "note": note,
        "next_action_on": contact.next_action_on,
    }
    if promised:
        db.session.add(
            CollectionPromise(
                credit_account_id=account_id,
                contact_id=contact.contact_id,
                amount=promise_amount,
                promised_on=today,
                due_on=promise_due_on,
            )
        )
        after |= {"promise_amount": promise_amount, "promise_due_on": promise_due_on}
    audit_record(
        action="collections.contact_logged",
        entity_type="credit_account",
        entity_id=account_id,
        after=after,
        actor=actor,
    )
    return contact


# What an open promise's account paid from the day it was made to its date (reversed payments
# and write-offs do not count).
_PAID = (
    sa.select(sa.func.coalesce(sa.func.sum(CreditPayment.amount), 0))
    .where(
        CreditPayment.credit_account_id == CollectionPromise.credit_account_id,
        CreditPayment.kind == "payment",
        CreditPayment.reversed_at.is_(None),
        CreditPayment.payment_date >= CollectionPromise.promised_on,
        CreditPayment.payment_date <= CollectionPromise.due_on,
    )
    .correlate(CollectionPromise)
    .scalar_subquery()
)


@atomic
def promises_settle(*, today: date | None = None) -> dict:
    """Nightly: an open promise is kept once the payments since it was made cover it by its
    date, broken when its date has passed without; one statement, each settlement audited."""
    today = today or clock.today()
    kept = CollectionPromise.amount <= _PAID
    settled = db.session.execute(
        sa.update(CollectionPromise)
        .where(CollectionPromise.state == "open", kept | (CollectionPromise.due_on < today))
        .values(state=sa.case((kept, "kept"), else_="broken"), settled_at=sa.func.now())
        .returning(
            CollectionPromise.promise_id,
            CollectionPromise.credit_account_id,
            CollectionPromise.amount,
            CollectionPromise.due_on,
            CollectionPromise.state,
        )
        .execution_options(synchronize_session=False)
    ).all()
    for promise in settled:
        audit_record(
            action="collections.promise_settled",
            entity_type="credit_account",
            entity_id=promise.credit_account_id,
            before={"promise_id": promise.promise_id, "state": "open"},
            after={
                "promise_id": promise.promise_id,
                "amount": promise.amount,
                "due_on": promise.due_on,
                "state": promise.state,
            },
            actor=SYSTEM_ACTOR,
        )
    states = [promise.state for promise in settled]
    return {"kept": states.count("kept"), "broken": states.count("broken")}
