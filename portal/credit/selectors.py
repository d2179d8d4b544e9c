"""Credit reads for pages: the account ledger, the approval queue, statements and aging."""

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal import clock
from portal.auth.models import StaffUser
from portal.credit.models import (
    CreditAccount,
    CreditPayment,
    CreditPaymentAllocation,
    CreditRequest,
    CreditUsage,
)
from portal.credit.services import credit_request_allowed
from portal.customers.models import Customer
from portal.extensions import db
from portal.money import money
from portal.segments.models import CustomerSegment

OUTSTANDING = ("pending", "overdue")


@dataclass(frozen=True)
class AccountLedger:
    """What the account page and its partials render, read in three statements."""

    account: CreditAccount
    customer: Customer
    pending_request: CreditRequest | None
    usages: list[tuple[CreditUsage, Decimal]]
    payments: list[tuple[CreditPayment, list[CreditPaymentAllocation]]]


def account_ledger(account_id: uuid.UUID) -> AccountLedger | None:
    """The account with its customer, pending request, usages (with what is owed) and payments."""
    pending = aliased(
        CreditRequest,
        sa.select(CreditRequest).where(CreditRequest.state == "pending").subquery(),
    )
    head = db.session.execute(
        sa.select(CreditAccount, Customer, pending)
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .outerjoin(pending, pending.credit_account_id == CreditAccount.credit_account_id)
        .where(CreditAccount.credit_account_id == account_id)
    ).first()
    if head is None:
        return None
    account, customer, pending_request = head
    return AccountLedger(
        account=account,
        customer=customer,
        pending_request=pending_request,
        usages=account_usages(account_id),
        payments=account_payments(account_id),
    )


@dataclass(frozen=True)
class QueueItem:
    """A pending request with what an approver needs to decide."""

    request: CreditRequest
    account: CreditAccount
    customer: Customer
    segment: CustomerSegment | None
    requester: StaffUser | None
    paid_usages: int
    average_days_to_pay: float | None
    overdue_count: int
    exposure: Decimal


def credit_queue() -> list[QueueItem]:
    """Pending requests (new lines and increases), oldest first, with customer facts."""
    rows = db.session.execute(
        sa.select(CreditRequest, CreditAccount, Customer, CustomerSegment, StaffUser)
        .join(CreditAccount, CreditAccount.credit_account_id == CreditRequest.credit_account_id)
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .outerjoin(CustomerSegment, CustomerSegment.customer_id == Customer.customer_id)
        .outerjoin(StaffUser, StaffUser.staff_user_id == CreditRequest.requested_by)
        .where(CreditRequest.state == "pending")
        .order_by(CreditRequest.requested_at, CreditRequest.credit_request_id)
    ).all()
    if not rows:
        return []
    behaviour = {
        row.credit_account_id: row
        for row in db.session.execute(
            sa.select(
                CreditUsage.credit_account_id,
                sa.func.count().filter(CreditUsage.status == "paid").label("paid"),
                sa.func.avg(
                    sa.extract("epoch", CreditUsage.paid_at - CreditUsage.created_at) / 86400
                )
                .filter(CreditUsage.status == "paid")
                .label("days_to_pay"),
                sa.func.count().filter(CreditUsage.status == "overdue").label("overdue"),
            )
            .where(CreditUsage.credit_account_id.in_([row[1].credit_account_id for row in rows]))
            .group_by(CreditUsage.credit_account_id)
        )
    }
    items = []
    for request, account, customer, segment, requester in rows:
        stats = behaviour.get(account.credit_account_id)
        items.append(
            QueueItem(
                request=request,
                account=account,
                customer=customer,
                segment=segment,
                requester=requester,
                paid_usages=stats.paid if stats else 0,
                average_days_to_pay=float(stats.days_to_pay)
                if stats and stats.days_to_pay
                else None,
                overdue_count=stats.overdue if stats else 0,
                exposure=account.credit_used,
            )
        )
    return items


def credit_queue_count() -> int:
    """How many requests wait for a decision."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(CreditRequest)
        .where(CreditRequest.state == "pending")
    )


def account_usages(account_id: uuid.UUID) -> list[tuple[CreditUsage, Decimal]]:
    """The account's usages, newest first, with what is still owed on each."""
    allocated = (
        sa.select(sa.func.coalesce(sa.func.sum(CreditPaymentAllocation.amount), 0))
        .where(CreditPaymentAllocation.usage_id == CreditUsage.usage_id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(CreditUsage, allocated)
        .where(CreditUsage.credit_account_id == account_id)
        .order_by(CreditUsage.created_at.desc())
    ).all()
    return [
        (usage, usage.amount - paid if usage.status in OUTSTANDING else Decimal("0"))
        for usage, paid in rows
    ]


def account_payments(account_id: uuid.UUID) -> list[tuple[CreditPayment, list]]:
    """The account's payments, newest first, each with its allocations (and their reversals)."""
    rows = db.session.execute(
        sa.select(CreditPayment, CreditPaymentAllocation)
        .outerjoin(
            CreditPaymentAllocation,
            CreditPaymentAllocation.payment_id == CreditPayment.payment_id,
        )
        .outerjoin(CreditUsage, CreditUsage.usage_id == CreditPaymentAllocation.usage_id)
        .where(CreditPayment.credit_account_id == account_id)
        .order_by(
            CreditPayment.created_at.desc(),
            CreditPayment.payment_id,
            CreditPaymentAllocation.created_at,
            CreditUsage.due_date,
            CreditUsage.created_at,
            CreditUsage.usage_id,
        )
    ).all()
    payments: dict[CreditPayment, list] = {}
    for payment, allocation in rows:
        allocations = payments.setdefault(payment, [])
        if allocation is not None:
            allocations.append(allocation)
    return list(payments.items())


@dataclass(frozen=True)
class CustomerCredit:
    """The credit panel of the customer page: the account, if any, and its latest movements."""

    account: CreditAccount | None
    activity: list[dict]
    request_allowed: bool


def customer_credit(customer: Customer, *, limit: int = 10) -> CustomerCredit:
    """The customer's account and its latest usages and payments, newest first (two statements)."""
    account = db.session.scalar(
        sa.select(CreditAccount).where(CreditAccount.customer_id == customer.customer_id)
    )
    allowed = credit_request_allowed(customer=customer, account=account)
    if account is None:
        return CustomerCredit(account=None, activity=[], request_allowed=allowed)
    usages = sa.select(
        sa.literal("usage").label("kind"),
        CreditUsage.created_at.label("at"),
        CreditUsage.amount.label("amount"),
        CreditUsage.status.label("status"),
        ("Orden " + sa.cast(CreditUsage.order_id, sa.String)).label("detail"),
    ).where(CreditUsage.credit_account_id == account.credit_account_id)
    payments = sa.select(
        sa.literal("payment"),
        CreditPayment.created_at,
        CreditPayment.amount,
        CreditPayment.payment_method,
        sa.func.coalesce(CreditPayment.payment_reference, ""),
    ).where(CreditPayment.credit_account_id == account.credit_account_id)
    movements = sa.union_all(usages, payments).subquery()
    rows = db.session.execute(
        # On the same instant a usage comes before a payment ("usage" > "payment").
        sa.select(movements).order_by(movements.c.at.desc(), movements.c.kind.desc()).limit(limit)
    ).mappings()
    return CustomerCredit(
        account=account, activity=[dict(row) for row in rows], request_allowed=allowed
    )


def ledger_outstanding(account_id: uuid.UUID) -> Decimal:
    """What the usages say is owed: the right-hand side of the ledger invariant."""
    return sum((owed for _, owed in account_usages(account_id)), Decimal("0"))


@dataclass(frozen=True)
class StatementLine:
    """One movement of a statement, with the balance after it."""

    on: date
    description: str
    charge: Decimal
    credit: Decimal
    balance: Decimal


def _local_date(moment) -> date:
    return moment.astimezone(clock.BUSINESS_ZONE).date()


def account_statement(
    ledger: AccountLedger, *, start: date | None, end: date | None
) -> tuple[Decimal, list[StatementLine], Decimal]:
    """Opening balance, movements with running balance, and closing balance for a period."""
    movements: list[tuple[date, int, str, Decimal, Decimal]] = []
    for usage, _ in ledger.usages:
        movements.append(
            (
                _local_date(usage.created_at),
                0,
                f"Cargo orden {usage.order_id}",
                usage.amount,
                Decimal(0),
            )
        )
        if usage.cancelled_at:
            movements.append(
                (
                    _local_date(usage.cancelled_at),
                    1,
                    f"Anulación cargo orden {usage.order_id}",
                    Decimal(0),
                    usage.amount,
                )
            )
    for payment, allocations in ledger.payments:
        applied = ", ".join(
            f"{money(a.amount)} a cargo {str(a.usage_id)[:8]}" for a in allocations if a.amount > 0
        )
        undone = ", ".join(
            f"{money(-a.amount)} de cargo {str(a.usage_id)[:8]}"
            for a in allocations
            if a.amount < 0
        )
        method = payment.payment_method
        reference = f" ref. {payment.payment_reference}" if payment.payment_reference else ""
        movements.append(
            (
                payment.payment_date,
                2,
                f"Pago {method}{reference}" + (f" ({applied})" if applied else ""),
                Decimal(0),
                payment.amount,
            )
        )
        if payment.reversed_at:
            movements.append(
                (
                    _local_date(payment.reversed_at),
                    3,
                    f"Reversión de pago: {payment.reversal_reason}"
                    + (f" (deshecho {undone})" if undone else ""),
                    payment.amount,
                    Decimal(0),
                )
            )
    movements.sort(key=lambda movement: (movement[0], movement[1]))
    opening = Decimal(0)
    lines: list[StatementLine] = []
    balance = Decimal(0)
    for on, _, description, charge, credit in movements:
        balance += charge - credit
        if start and on < start:
            opening = balance
            continue
        if end and on > end:
            break
        lines.append(StatementLine(on, description, charge, credit, balance))
    closing = lines[-1].balance if lines else opening
    return opening, lines, closing


AGING_BUCKETS = (
    ("not_due", "Por vencer"),
    ("days_1_30", "1 a 30 días"),
    ("days_31_60", "31 a 60 días"),
    ("days_61_90", "61 a 90 días"),
    ("days_90_plus", "Más de 90 días"),
)
_AGING = sa.text(
    """
    WITH owed AS (
        SELECT a.customer_id, (:today - u.due_date) AS late,
               u.amount - coalesce((SELECT sum(x.amount) FROM credit_payment_allocations x
                                    WHERE x.usage_id = u.usage_id), 0) AS outstanding
        FROM credit_usages u
        JOIN credit_accounts a ON a.credit_account_id = u.credit_account_id
        WHERE u.status IN ('pending', 'overdue')
    )
    SELECT c.customer_id, c.first_name || ' ' || c.last_name AS name,
           coalesce(sum(outstanding) FILTER (WHERE late <= 0), 0) AS not_due,
           coalesce(sum(outstanding) FILTER (WHERE late BETWEEN 1 AND 30), 0) AS days_1_30,
           coalesce(sum(outstanding) FILTER (WHERE late BETWEEN 31 AND 60), 0) AS days_31_60,
           coalesce(sum(outstanding) FILTER (WHERE late BETWEEN 61 AND 90), 0) AS days_61_90,
           coalesce(sum(outstanding) FILTER (WHERE late > 90), 0) AS days_90_plus,
           sum(outstanding) AS total
    FROM owed JOIN customers c ON c.customer_id = owed.customer_id
    GROUP BY c.customer_id, c.first_name, c.last_name
    HAVING sum(outstanding) > 0
    """
)


def aging_report(*, today: date | None = None, sort: str = "total") -> tuple[list, dict]:
    """Outstanding credit by days past due: per customer (sorted) and organization totals."""
    rows = db.session.execute(_AGING, {"today": today or clock.today()}).all()
    keys = [key for key, _ in AGING_BUCKETS] + ["total"]
    if sort == "name":
        rows.sort(key=lambda row: row.name.lower())
    elif sort in keys:
        rows.sort(key=lambda row: (getattr(row, sort), row.total), reverse=True)
    totals = {key: sum((getattr(row, key) for row in rows), Decimal(0)) for key in keys}
    return rows, totals
