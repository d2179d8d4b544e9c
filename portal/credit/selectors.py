"""Credit reads for pages: the account ledger, the approval queue, statements and aging."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased

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
