"""Credit desk history: requests, decisions, charges, payments and reversals over the last months.

Every step goes through portal.credit.services with the business clock pinned to the day it
happens, so due dates, FIFO allocations, four-eyes and the ledger invariant are the real ones.
Only the database's own timestamps (created, requested, decided, paid) are moved back to that
day afterwards; the audit log keeps the true seeding time (it is append-only and chained).
"""

import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from portal import clock
from portal.auth.models import StaffUser
from portal.credit.models import CreditAccount, CreditPayment, CreditRequest
from portal.credit.services import (
    CreditError,
    account_get,
    credit_approve,
    credit_increase_request,
    credit_reject,
    credit_request,
    credit_suspend,
    payment_record,
    payment_reverse,
    usage_charge,
    usages_mark_overdue,
)
from portal.customers.models import Customer
from portal.db import organization_scope
from portal.demo.events import LAST_PURCHASE
from portal.events.models import Purchase
from portal.extensions import db

# One plan per account, cycled, so even a small seed has every state and aging bucket.
# (plan, days past due of the unpaid charge or None)
PLANS = [
    ("current", None),
    ("paid_up", None),
    ("pending", None),
    ("current", None),
    ("overdue", (1, 30)),
    ("reversed", None),
    ("rejected", None),
    ("overdue", (31, 60)),
    ("increase_pending", None),
    ("current", None),
    ("overdue", (61, 90)),
    ("suspended", None),
    ("increase_decided", None),
    ("paid_up", None),
    ("overdue", (91, 200)),
    ("pending", None),
]
CREDIT_SHARE = 0.025
# Orders bought on credit are numbered apart from the order events' (F-0012000 onwards).
CREDIT_ORDER_NUMBERS = 5_000_000
CREDIT_ORDERS = uuid.UUID("6f1d7c1e-2b1a-4c55-9a43-1f5f3c2d9e10")  # their ids' namespace
NEW_LINE_REASONS = [
    "Cliente frecuente desde hace tres años; compra electrodomésticos a plazos para su negocio.",
    "Solicita crédito para amueblar su apartamento nuevo; presenta carta de trabajo y talonarios.",
    "Compras mensuales constantes en sucursal; pide financiar la renovación de su cocina.",
    "Comerciante con historial de pagos puntuales en otra cadena; adjunta referencias.",
    "Empleado público con ingresos estables; necesita equipos para el regreso a clases.",
    "Empresa cliente desde 2021; requiere crédito para reponer inventario de temporada.",
    "Docente con nombramiento permanente; desea comprar una computadora y útiles escolares.",
    "Dueña de una fonda en Santiago; necesita una nevera industrial y paga por quincena.",
]
INCREASE_REASONS = [
    "Ha pagado puntualmente durante un año; pide más cupo para la temporada navideña.",
    "Abrió una segunda sucursal de su negocio y necesita comprar mobiliario y equipo.",
    "Sus compras mensuales ya rozan el límite actual; presenta estados de cuenta bancarios.",
    "Recibió un aumento salarial (adjunta carta de la empresa); quiere financiar un televisor.",
]
REJECTION_NOTES = [
    "Ingresos no verificables con la documentación presentada.",
    "Referencias comerciales negativas; puede volver a solicitar en seis meses.",
    "La capacidad de pago no alcanza para el límite solicitado.",
]
SUSPENSION_REASON = "Cliente reporta extravío de su cédula; se suspende hasta verificar identidad."
REVERSAL_REASON = "Cheque devuelto por fondos insuficientes."
LIMITS = [500, 750, 1000, 1500, 2000, 2500, 3000, 5000]
TERMS = [15, 30, 30, 30, 45, 60]
METHODS = ["cash", "cash", "card", "transfer", "check"]


@dataclass(frozen=True)
class Desk:
    """Who works the organization's credit desk: requesters and an approver."""

    requesters: list[StaffUser]
    approver: StaffUser


def _desk() -> Desk | None:
    staff = list(db.session.scalars(sa.select(StaffUser).order_by(StaffUser.email)))
    requesters = [u for u in staff if {"branch_staff", "credit_staff"} & set(u.roles)]
    approvers = [u for u in staff if "credit_approver" in u.roles]
    return Desk(requesters, approvers[0]) if requesters and approvers else None


def _moment(day: date, rng: random.Random) -> datetime:
    local = datetime.combine(day, time(8, 30), clock.BUSINESS_ZONE)
    moment = local + timedelta(minutes=rng.randint(0, 9 * 60))
    return min(moment.astimezone(UTC), datetime.now(UTC) - timedelta(minutes=1))


def _backdate(model, key, value, **columns) -> None:
    db.session.execute(
        sa.update(model)
        .where(key == value)
        .values(**columns)
        .execution_options(synchronize_session=False)
    )


class _History:
    """Replays one account's life, day by day, through the credit services."""

    def __init__(self, rng: random.Random, desk: Desk, today: date, order_numbers):
        self.rng, self.desk, self.today = rng, desk, today
        self.order_numbers = order_numbers
        self.requester = rng.choice(desk.requesters)

    def open(self, customer_id: uuid.UUID, opened: date, *, decide: str | None) -> uuid.UUID:
        """Request a new line on `opened`; the approver decides the next business day."""
        limit = Decimal(self.rng.choice(LIMITS))
        with clock.pinned(opened):
            request, _ = credit_request(
                customer_id=customer_id,
                limit=limit,
                term_days=self.rng.choice(TERMS),
                notes=self.rng.choice(NEW_LINE_REASONS),
                requester=self.requester,
            )
        account_id, request_id = request.credit_account_id, request.credit_request_id
        requested_at = _moment(opened, self.rng)
        _backdate(
            CreditAccount, CreditAccount.credit_account_id, account_id, created_at=requested_at
        )
        _backdate(
            CreditRequest, CreditRequest.credit_request_id, request_id, requested_at=requested_at
        )
        db.session.commit()
        if decide is not None:
            self._decide(request_id, opened + timedelta(days=1), decide)
        return account_id

    def _decide(self, request_id: uuid.UUID, day: date, decision: str) -> None:
        with clock.pinned(day):
            if decision == "approve":
                credit_approve(
                    request_id=request_id,
                    approver=self.desk.approver,
                    limit=None,
                    term_days=None,
                    notes="Historial de compras y referencias verificadas.",
                )
            else:
                credit_reject(
                    request_id=request_id,
                    approver=self.desk.approver,
                    notes=self.rng.choice(REJECTION_NOTES),
                )
        _backdate(
            CreditRequest,
            CreditRequest.credit_request_id,
            request_id,
            decided_at=_moment(day, self.rng),
        )
        db.session.commit()

    def charge(self, account_id: uuid.UUID, day: date, amount: Decimal) -> bool:
        """Charge an order bought on credit on `day` (it enters the purchases projection with
        its number, as the Orders service reports it); False when the rules refuse it."""
        # Not a version-4 id from the shared random stream: those are the order events' ids.
        order_id = uuid.uuid5(CREDIT_ORDERS, str(self.rng.getrandbits(128)))
        try:
            with clock.pinned(day):
                usage_charge(
                    account_id=account_id, order_id=order_id, amount=amount, actor=self.requester
                )
        except CreditError:
            return False
        account = account_get(account_id)
        bought = _moment(day, self.rng)
        db.session.add(
            Purchase(
                order_id=order_id,
                order_number=f"F-{next(self.order_numbers):07d}",
                customer_id=account.customer_id,
                total=amount,
                completed_at=bought,
                status="completed",
                event_occurred_at=bought,
            )
        )
        db.session.commit()
        return True

    def pay(self, account_id: uuid.UUID, day: date, amount: Decimal, method: str) -> uuid.UUID:
        """Record a payment received on `day` (FIFO allocation by the service)."""
        with clock.pinned(day):
            payment, _ = payment_record(
                account_id=account_id,
                amount=amount,
                method=method,
                reference=f"{method[:3].upper()}-{self.rng.randint(10000, 99999)}",
                payment_date=day,
                key=uuid.UUID(int=self.rng.getrandbits(128), version=4),
                actor=self.requester,
            )
        db.session.commit()
        return payment.payment_id

    def activity(self, account_id, opened: date, *, until: date, unpaid_due: date | None) -> None:
        """Charges every few weeks from `opened` to `until`, each paid before it falls due.

        With `unpaid_due`, the last charge is placed so that it falls due that day and is never
        paid: the account is that many days past due today.
        """
        account = account_get(account_id)
        term, limit = account.payment_term_days, account.credit_limit
        db.session.rollback()
        day = opened + timedelta(days=self.rng.randint(2, 10))
        last_charge = unpaid_due - timedelta(days=term) if unpaid_due else until
        charges: list[tuple[date, Decimal]] = []
        while day < last_charge:
            charges.append((day, self._amount(limit)))
            day += timedelta(days=self.rng.randint(25, 70))
        if unpaid_due:
            charges.append((last_charge, self._amount(limit)))
        steps = []
        for position, (charge_day, amount) in enumerate(charges):
            steps.append((charge_day, 0, "charge", amount))
            unpaid = unpaid_due is not None and position == len(charges) - 1
            paid_on = charge_day + timedelta(days=self.rng.randint(3, term))
            if not unpaid and paid_on < self.today:
                steps.append((paid_on, 1, "pay", amount))
        owed = Decimal(0)
        for day, _, kind, amount in sorted(steps, key=lambda step: step[:2]):
            if kind == "charge":
                # Near the limit the customer buys something smaller, as at a real counter.
                while amount >= 10 and not self.charge(account_id, day, amount):
                    amount = (amount / 2).quantize(Decimal("0.01"))
                owed += amount if amount >= 10 else 0
            elif owed > 0:
                self.pay(account_id, day, min(amount, owed), self.rng.choice(METHODS))
                owed -= min(amount, owed)

    def _amount(self, limit: Decimal) -> Decimal:
        share = Decimal(self.rng.randint(5, 25)) / 100
        return max(Decimal("12.50"), (limit * share).quantize(Decimal("0.01")))

    def bounced_check(self, account_id: uuid.UUID, day: date) -> None:
        """A charge paid by check, the check bounces, the customer pays by transfer later."""
        amount = Decimal(self.rng.randint(8000, 30000)) / 100
        if not self.charge(account_id, day, amount):
            return
        payment_id = self.pay(account_id, day + timedelta(days=5), amount, "check")
        # Load the actor first: payment_reverse reads its id after setting reversed_at, and an
        # expired actor would autoflush the half-made reversal (a view's current_user is fresh).
        db.session.refresh(self.requester)
        with clock.pinned(day + timedelta(days=8)):
            payment_reverse(payment_id=payment_id, reason=REVERSAL_REASON, actor=self.requester)
        _backdate(
            CreditPayment,
            CreditPayment.payment_id,
            payment_id,
            reversed_at=_moment(day + timedelta(days=8), self.rng),
        )
        db.session.commit()
        if day + timedelta(days=12) < self.today:
            self.pay(account_id, day + timedelta(days=12), amount, "transfer")

    def increase(self, account_id: uuid.UUID, day: date, *, decide: bool) -> None:
        """Ask for a higher limit on `day`; decided two days later when `decide`."""
        account = account_get(account_id)
        limit = account.credit_limit * Decimal(self.rng.choice(["1.5", "2"]))
        db.session.rollback()
        with clock.pinned(day):
            request = credit_increase_request(
                account_id=account_id,
                limit=limit,
                reason=self.rng.choice(INCREASE_REASONS),
                requester=self.requester,
            )
        request_id = request.credit_request_id
        _backdate(
            CreditRequest,
            CreditRequest.credit_request_id,
            request_id,
            requested_at=_moment(day, self.rng),
        )
        db.session.commit()
        if decide:
            self._decide(request_id, day + timedelta(days=2), "approve")


# The services stamp charges and payments with the database's now(); move those stamps to the
# day each one happened (a shop-hours time derived from its own ids, so it is deterministic).
_SHOP_TIME = (
    "least(({day} + time '08:30' + interval '1 minute' * (abs(hashtext({key}::text)) % 540))"
    " AT TIME ZONE 'America/Panama', now())"
)
_BACKDATE = [
    sa.text(
        "UPDATE credit_usages u SET created_at = "
        + _SHOP_TIME.format(day="(u.due_date - a.payment_term_days)", key="u.order_id")
        + " FROM credit_accounts a WHERE a.credit_account_id = u.credit_account_id"
    ),
    sa.text(
        "UPDATE credit_payments SET created_at = "
        + _SHOP_TIME.format(day="payment_date", key="idempotency_key")
    ),
    sa.text(
        """
        UPDATE credit_usages u SET paid_at = coalesce((
            SELECT max(p.created_at) FROM credit_payment_allocations x
            JOIN credit_payments p ON p.payment_id = x.payment_id
            WHERE x.usage_id = u.usage_id AND p.reversed_at IS NULL), u.paid_at)
        WHERE u.status = 'paid'
        """
    ),
]


def _candidates(rng: random.Random) -> list[uuid.UUID]:
    active = list(
        db.session.scalars(
            sa.select(Customer.customer_id)
            .where(Customer.status == "active")
            .order_by(Customer.customer_id)
        )
    )
    db.session.rollback()
    count = max(len(PLANS), round(len(active) * CREDIT_SHARE))
    return rng.sample(active, min(count, len(active)))


def credit_seed(*, organization_id: uuid.UUID, seed: int, today: date) -> int:
    """Give some active customers a credit history ending today; returns accounts opened."""
    rng = random.Random(seed)
    with organization_scope(organization_id):
        desk = _desk()
        if desk is None:
            return 0  # nobody to request and decide: no credit desk in this organization
        customers = _candidates(rng)
        order_numbers = itertools.count(CREDIT_ORDER_NUMBERS)
        for position, customer_id in enumerate(customers):
            plan, late = PLANS[position % len(PLANS)]
            history = _History(rng, desk, today, order_numbers)
            _account_history(history, customer_id, plan, late, today)
        for statement in _BACKDATE:
            db.session.execute(statement)
        db.session.execute(LAST_PURCHASE)  # the orders bought on credit count as purchases
        # Requesters have read the older decisions; the last two days' are news to them.
        db.session.execute(
            sa.update(CreditRequest)
            .where(
                CreditRequest.state != "pending",
                CreditRequest.decided_at < datetime.now(UTC) - timedelta(days=2),
            )
            .values(decision_seen_at=CreditRequest.decided_at)
        )
        # Tonight's job, run now: past-due charges become overdue, long overdue accounts suspend.
        usages_mark_overdue(
            today=today, suspend_after_days=current_app.config["OVERDUE_SUSPEND_DAYS"]
        )
        db.session.commit()
    return len(customers)


def _account_history(history: _History, customer_id, plan: str, late, today: date) -> None:
    rng = history.rng
    if plan == "pending":
        history.open(customer_id, today - timedelta(days=rng.randint(0, 13)), decide=None)
        return
    if plan == "rejected":
        history.open(customer_id, today - timedelta(days=rng.randint(3, 120)), decide="reject")
        return
    # Old enough for the unpaid charge of an overdue plan: its term plus the days past due.
    opened = today - timedelta(days=rng.randint(60, 300) + (late[1] if late else 0))
    account_id = history.open(customer_id, opened, decide="approve")
    unpaid_due = today - timedelta(days=rng.randint(*late)) if late else None
    until = today - timedelta(days=rng.randint(20, 60)) if plan == "paid_up" else today
    history.activity(account_id, opened, until=until, unpaid_due=unpaid_due)
    if plan == "reversed":
        history.bounced_check(account_id, today - timedelta(days=rng.randint(14, 40)))
    elif plan == "increase_pending":
        history.increase(account_id, today - timedelta(days=rng.randint(0, 10)), decide=False)
    elif plan == "increase_decided":
        history.increase(account_id, today - timedelta(days=rng.randint(20, 90)), decide=True)
    elif plan == "suspended":
        credit_suspend(account_id=account_id, reason=SUSPENSION_REASON, actor=history.desk.approver)
