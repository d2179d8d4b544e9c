"""Collections activity on the overdue accounts: assignments, contacts, one promise kept and
one broken, the suggested dunning levels and their first run (one customer gets a letter), a late
fee rule with this month's fees (one waived), and the dashboard's monthly history, so the
worklist and the dashboard look like a working month on first run.

Every step goes through portal.collections.services with the business clock pinned to the day
it happens (the promises are made and settled on their days); the contact log is append-only,
so its rows keep the seeding time.
"""

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal import clock
from portal.auth.models import StaffUser
from portal.collections.selectors import WorklistFilters, collectors, worklist_page
from portal.collections.services import (
    DUNNING_SUGGESTIONS,
    assignment_set,
    contact_record,
    dunning_level_save,
    dunning_run,
    promises_settle,
)
from portal.credit.fees import late_fee_waive, late_fees_post
from portal.credit.models import CreditUsage
from portal.credit.services import aging_months_record, payment_record
from portal.customers.models import Customer
from portal.db import organization_scope
from portal.extensions import db
from portal.settings.services import organization_settings_update

NOTES = [
    "Dice que cobra la quincena y pasa por la sucursal.",
    "No contesta; se deja mensaje de voz.",
    "Pide el estado de cuenta por correo antes de pagar.",
    "Reclama un cargo que no reconoce; se revisa con la sucursal.",
]
# (channel, outcome, days until the next action) of the accounts without a promise, cycled.
FOLLOW_UPS = [
    ("call", "no_answer", 0),
    ("whatsapp", "contacted", 2),
    ("call", "wrong_number", 1),
    ("visit", "dispute", 5),
]


def _promise(account, collector, made: date, due: date, amount: Decimal) -> None:
    with clock.pinned(made):
        contact_record(
            account_id=account.credit_account_id,
            channel="call",
            outcome="promise",
            note=NOTES[0],
            next_action_on=None,
            promise_amount=amount,
            promise_due_on=due,
            actor=collector,
        )


def collections_seed(*, organization_id: uuid.UUID, seed: int, today: date) -> int:
    """Assign the overdue accounts round-robin, log contacts, keep one promise and break
    another; returns the accounts worked."""
    rng = random.Random(seed)
    with organization_scope(organization_id), clock.pinned(today):
        aging_months_record(today=today)  # the months before today, from the ledger
        people = collectors()
        accounts = worklist_page(WorklistFilters(), size=12, today=today).rows
        if not people or len(accounts) < 2:
            return 0
        for index, person in enumerate(people):
            mine = [row.credit_account_id for row in accounts[index :: len(people)]]
            if mine:
                assignment_set(account_ids=mine, collector_id=person.staff_user_id, actor=person)
        kept, broken, *others = accounts
        collector = people[0]
        amount = (kept.overdue / 2).quantize(Decimal("0.01"))
        _promise(kept, collector, today - timedelta(days=6), today + timedelta(days=1), amount)
        payment_record(  # paid today, before the promised date: tonight's job keeps it
            account_id=kept.credit_account_id,
            amount=amount,
            method="cash",
            reference=None,
            payment_date=today,
            key=uuid.uuid5(uuid.NAMESPACE_OID, f"promise-{kept.credit_account_id}"),
            actor=collector,
        )
        amount = (broken.overdue / 3).quantize(Decimal("0.01"))
        _promise(broken, collector, today - timedelta(days=7), today - timedelta(days=1), amount)
        promises_settle(today=today)
        for row, (channel, outcome, days) in zip(others, FOLLOW_UPS * 3, strict=False):
            contact_record(
                account_id=row.credit_account_id,
                channel=channel,
                outcome=outcome,
                note=rng.choice(NOTES),
                next_action_on=today + timedelta(days=days),
                promise_amount=None,
                promise_due_on=None,
                actor=rng.choice(people),
            )
        db.session.commit()
        _dunning_seed(others[-1].customer_id, today)
        _late_fees_seed(today)
    return len(accounts)


def _dunning_seed(letter_customer_id: uuid.UUID, today: date) -> None:
    """The suggested dunning levels, one customer without e-mail (a letter to print), and
    tonight's run: reminders in the contact logs and, for that customer, "Enviar carta"."""
    admin = db.session.scalar(
        sa.select(StaffUser).where(StaffUser.roles.contains(["org_admin"])).limit(1)
    )
    if admin is None:
        return
    for days, name, subject, body in DUNNING_SUGGESTIONS:
        dunning_level_save(
            level_id=None, days_overdue=days, name=name, subject=subject, body=body, actor=admin
        )
    db.session.execute(
        sa.update(Customer).where(Customer.customer_id == letter_customer_id).values(email=None)
    )
    dunning_run(today=today)


def _late_fees_seed(today: date) -> None:
    """A fixed late fee after 10 days of grace, tonight's fees, and one waived by an approver."""
    admin, approver = (
        db.session.scalar(sa.select(StaffUser).where(StaffUser.roles.contains([role])).limit(1))
        for role in ("org_admin", "credit_approver")
    )
    if admin is None or approver is None:
        return
    organization_settings_update(
        actor=admin,
        late_fee_mode="fixed",
        late_fee_amount=Decimal("5.00"),
        late_fee_grace_days=10,
    )
    late_fees_post(today=today)
    waived = db.session.scalar(
        sa.select(CreditUsage.usage_id)
        .where(CreditUsage.kind == "late_fee")
        .order_by(CreditUsage.usage_id)
        .limit(1)
    )
    if waived is not None:
        late_fee_waive(
            usage_id=waived, reason="Pagó el día de la promesa; se condona.", actor=approver
        )
    db.session.commit()
