"""Credit reads for pages: the account ledger, the approval queue, statements and aging."""

import uuid
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal import clock
from portal.auth.models import StaffUser
from portal.credit.labels import charge_name_sql
from portal.credit.models import (
    CreditAccount,
    CreditPayment,
    CreditPaymentAllocation,
    CreditRequest,
    CreditUsage,
)
from portal.credit.services import credit_request_allowed
from portal.customers.models import Customer
from portal.events.models import Purchase
from portal.extensions import db

OUTSTANDING = ("pending", "overdue")
# How staff know a charge: «orden F-0012345» or «recargo por mora 11/2026».
CHARGE_NAME = sa.literal_column(charge_name_sql(CreditUsage.__tablename__))


@dataclass(frozen=True)
class RequestView:
    """A request with the names of who asked and who decided (None while pending)."""

    request: CreditRequest
    requester_name: str
    decider_name: str | None
    customer_name: str | None = None
    customer_id: uuid.UUID | None = None


_REQUESTER = aliased(StaffUser)
_DECIDER = aliased(StaffUser)


def _request_views(statement) -> list[RequestView]:
    return [
        RequestView(request, requester, decider, *rest)
        for request, requester, decider, *rest in db.session.execute(statement)
    ]


def _requests_with_names(*columns):
    return (
        sa.select(CreditRequest, _REQUESTER.full_name, _DECIDER.full_name, *columns)
        .join(_REQUESTER, _REQUESTER.staff_user_id == CreditRequest.requested_by)
        .outerjoin(_DECIDER, _DECIDER.staff_user_id == CreditRequest.decided_by)
    )


def request_latest(account_id: uuid.UUID) -> RequestView | None:
    """The account's latest request (pending or decided), with names."""
    views = _request_views(
        _requests_with_names()
        .where(CreditRequest.credit_account_id == account_id)
        .order_by(CreditRequest.requested_at.desc(), CreditRequest.credit_request_id.desc())
        .limit(1)
    )
    return views[0] if views else None


def requests_of(requester_id: uuid.UUID, *, limit: int = 100) -> list[RequestView]:
    """A requester's requests, newest first, with the customer and the decision."""
    return _request_views(
        _requests_with_names(Customer.full_name, Customer.customer_id)
        .join(CreditAccount, CreditAccount.credit_account_id == CreditRequest.credit_account_id)
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .where(CreditRequest.requested_by == requester_id)
        .order_by(CreditRequest.requested_at.desc(), CreditRequest.credit_request_id.desc())
        .limit(limit)
    )


def decisions_unseen_count(requester_id: uuid.UUID) -> int:
    """How many of the requester's requests were decided since they last looked."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(CreditRequest)
        .where(
            CreditRequest.requested_by == requester_id,
            CreditRequest.state != "pending",
            CreditRequest.decision_seen_at.is_(None),
        )
    )


@dataclass(frozen=True)
class AccountLedger:
    """What the account page and its partials render."""

    account: CreditAccount
    customer: Customer
    request: RequestView | None
    usages: list[tuple[CreditUsage, Decimal, str]]
    payments: list[tuple[CreditPayment, list]]

    @property
    def pending_request(self) -> CreditRequest | None:
        """The request waiting for a decision, if any."""
        if self.request and self.request.request.state == "pending":
            return self.request.request
        return None


def account_ledger(account_id: uuid.UUID) -> AccountLedger | None:
    """The account with its customer, latest request, usages (with what is owed) and payments."""
    head = db.session.execute(
        sa.select(CreditAccount, Customer)
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .where(CreditAccount.credit_account_id == account_id)
    ).first()
    if head is None:
        return None
    account, customer = head
    return AccountLedger(
        account=account,
        customer=customer,
        request=request_latest(account_id),
        usages=account_usages(account_id),
        payments=account_payments(account_id),
    )


QUEUE_SORTS = {
    "age": "r.requested_at, r.credit_request_id",
    "amount": "coalesce(r.requested_limit, r.write_off_amount) DESC, r.requested_at, "
    "r.credit_request_id",
    "risk": "coalesce(h.worst_late, 0) DESC, coalesce(h.late_12m, 0) DESC, "
    "coalesce(h.on_time::numeric / nullif(h.settled, 0), 1), r.requested_at, r.credit_request_id",
}
QUEUE_SORT_LABELS = {"age": "Antigüedad", "amount": "Monto", "risk": "Riesgo"}
# Worst lateness ever, as the aging report names its buckets.
WORST_BUCKETS = (
    (0, "Sin atrasos"),
    (30, "1 a 30 días"),
    (60, "31 a 60 días"),
    (90, "61 a 90 días"),
)
_ZONE = clock.BUSINESS_ZONE.key
# One statement: the pending requests with their customer, requester and the customer's payment
# behaviour over every account of theirs (a new line's own account has no history yet).
_QUEUE = """
    SELECT r.credit_request_id, r.kind, r.requested_limit, r.write_off_amount,
           r.requested_term_days, r.requested_at, r.reason, r.requested_by,
           requester.full_name AS requester_name,
           a.credit_account_id, a.credit_limit, a.payment_term_days, a.credit_used AS exposure,
           c.customer_id, c.full_name AS customer_name, c.loyalty_tier,
           c.customer_type, s.segment_code, s.lifetime_value,
           coalesce(h.settled, 0) AS settled, coalesce(h.on_time, 0) AS on_time,
           h.late_12m, h.worst_late, coalesce(h.overdue, 0) AS overdue
    FROM credit_requests r
    JOIN credit_accounts a ON a.credit_account_id = r.credit_account_id
    JOIN customers c ON c.customer_id = a.customer_id
    JOIN staff_users requester ON requester.staff_user_id = r.requested_by
    LEFT JOIN customer_segments s ON s.customer_id = c.customer_id
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE u.status = 'paid') AS settled,
               count(*) FILTER (WHERE u.status = 'paid'
                   AND (u.paid_at AT TIME ZONE :zone)::date <= u.due_date) AS on_time,
               count(*) FILTER (WHERE u.status = 'overdue') AS overdue,
               max(late) FILTER (WHERE u.due_date > CAST(:today AS date) - 365) AS late_12m,
               max(late) AS worst_late
        FROM credit_accounts history
        JOIN credit_usages u ON u.credit_account_id = history.credit_account_id
        CROSS JOIN LATERAL (
            SELECT greatest(0, CASE
                WHEN u.status = 'paid' THEN (u.paid_at AT TIME ZONE :zone)::date - u.due_date
                WHEN u.status = 'cancelled' THEN 0
                ELSE CAST(:today AS date) - u.due_date END) AS late
        ) AS lateness
        WHERE history.customer_id = c.customer_id
    ) AS h ON true
    WHERE r.state = 'pending'
      AND (CAST(:kind AS text) IS NULL OR r.kind = :kind)
      AND (CAST(:min_amount AS numeric) IS NULL
           OR coalesce(r.requested_limit, r.write_off_amount) >= :min_amount)
      AND (CAST(:max_amount AS numeric) IS NULL
           OR coalesce(r.requested_limit, r.write_off_amount) <= :max_amount)
      AND (CAST(:requester AS uuid) IS NULL OR r.requested_by = :requester)
      AND (CAST(:request_id AS uuid) IS NULL OR r.credit_request_id = :request_id)
    ORDER BY {order}
"""


@dataclass(frozen=True)
class QueueFilters:
    """What the approver narrowed the queue to, and its order."""

    sort: str = "age"
    kind: str | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    requester: uuid.UUID | None = None


def worst_bucket(days: int | None) -> str:
    """The aging bucket of the worst lateness ever ("Sin historial" without charges)."""
    if days is None:
        return "Sin historial"
    for limit, name in WORST_BUCKETS:
        if days <= limit:
            return name
    return "Más de 90 días"


def credit_queue(filters: QueueFilters | None = None, *, request_id: uuid.UUID | None = None):
    """Pending requests (oldest first unless sorted otherwise), with customer facts and payment
    behaviour, in one statement; only `request_id` when given."""
    filters = filters or QueueFilters()
    statement = sa.text(_QUEUE.format(order=QUEUE_SORTS[filters.sort]))
    return db.session.execute(
        statement,
        {
            "zone": _ZONE,
            "today": clock.today(),
            "kind": filters.kind,
            "min_amount": filters.min_amount,
            "max_amount": filters.max_amount,
            "requester": filters.requester,
            "request_id": request_id,
        },
    ).all()


def queue_requesters() -> list:
    """Who has requests waiting (the requester filter's choices)."""
    return db.session.execute(
        sa.select(StaffUser.staff_user_id, StaffUser.full_name)
        .where(
            sa.exists().where(
                CreditRequest.requested_by == StaffUser.staff_user_id,
                CreditRequest.state == "pending",
            )
        )
        .order_by(StaffUser.full_name)
    ).all()


def queue_item(request_id: uuid.UUID):
    """One pending request as a queue row (what its expanded view shows), None once decided."""
    rows = credit_queue(request_id=request_id)
    return rows[0] if rows else None


def credit_queue_count() -> int:
    """How many requests wait for a decision."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(CreditRequest)
        .where(CreditRequest.state == "pending")
    )


def account_usages(account_id: uuid.UUID) -> list[tuple[CreditUsage, Decimal, str]]:
    """The account's usages, newest first, with what is still owed on each and its order
    number."""
    allocated = (
        sa.select(sa.func.coalesce(sa.func.sum(CreditPaymentAllocation.amount), 0))
        .where(CreditPaymentAllocation.usage_id == CreditUsage.usage_id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(CreditUsage, allocated, CHARGE_NAME)
        .where(CreditUsage.credit_account_id == account_id)
        .order_by(CreditUsage.created_at.desc())
    ).all()
    return [
        (usage, usage.amount - paid if usage.status in OUTSTANDING else Decimal("0"), number)
        for usage, paid, number in rows
    ]


def account_payments(account_id: uuid.UUID) -> list[tuple[CreditPayment, list]]:
    """The account's payments and write-offs, newest first, each with its allocations (and
    their reversals) as (allocation, order number of the charge it applies to)."""
    rows = db.session.execute(
        sa.select(CreditPayment, CreditPaymentAllocation, CHARGE_NAME)
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
    for payment, allocation, order_number in rows:
        allocations = payments.setdefault(payment, [])
        if allocation is not None:
            allocations.append((allocation, order_number))
    return list(payments.items())


@dataclass(frozen=True)
class Receipt:
    """A payment's receipt: the payment, who paid, and what it paid (amount, order number)."""

    payment: CreditPayment
    customer: Customer
    applied: list[tuple[Decimal, str]]


def payment_receipt(payment_id: uuid.UUID) -> Receipt | None:
    """A payment (not a write-off) of the current organization with what it paid, oldest charge
    first (one statement)."""
    rows = db.session.execute(
        sa.select(CreditPayment, Customer, CreditPaymentAllocation.amount, CHARGE_NAME)
        .join(CreditAccount, CreditAccount.credit_account_id == CreditPayment.credit_account_id)
        .join(Customer, Customer.customer_id == CreditAccount.customer_id)
        .outerjoin(
            CreditPaymentAllocation,
            (CreditPaymentAllocation.payment_id == CreditPayment.payment_id)
            & (CreditPaymentAllocation.amount > 0),
        )
        .outerjoin(CreditUsage, CreditUsage.usage_id == CreditPaymentAllocation.usage_id)
        .where(CreditPayment.payment_id == payment_id, CreditPayment.kind == "payment")
        .order_by(
            CreditPaymentAllocation.created_at,
            CreditUsage.due_date,
            CreditUsage.created_at,
            CreditUsage.usage_id,
        )
    ).all()
    if not rows:
        return None
    payment, customer = rows[0][0], rows[0][1]
    applied = [(amount, order) for _, _, amount, order in rows if amount is not None]
    return Receipt(payment, customer, applied)


@dataclass(frozen=True)
class CustomerCredit:
    """The credit panel of the customer page: the account, if any, and its latest movements."""

    account: CreditAccount | None
    activity: list[dict]
    request_allowed: bool
    request: RequestView | None = None


def customer_credit(customer: Customer, *, limit: int = 10) -> CustomerCredit:
    """The customer's account and its latest usages and payments, newest first (two statements)."""
    account = db.session.scalar(
        sa.select(CreditAccount).where(CreditAccount.customer_id == customer.customer_id)
    )
    allowed = credit_request_allowed(customer=customer, account=account)
    if account is None:
        return CustomerCredit(account=None, activity=[], request_allowed=allowed)
    usages = sa.select(
        sa.case((CreditUsage.status == "cancelled", "usage_cancelled"), else_="usage").label(
            "kind"
        ),
        sa.literal(1).label("rank"),
        CreditUsage.created_at.label("at"),
        CreditUsage.amount.label("amount"),
        CreditUsage.status.label("status"),
        sa.null().label("method"),
        CHARGE_NAME.label("detail"),
    ).where(CreditUsage.credit_account_id == account.credit_account_id)
    payments = sa.select(
        sa.case(
            (CreditPayment.kind == "write_off", "write_off"),
            (CreditPayment.reversed_at.is_not(None), "payment_reversed"),
            else_="payment",
        ),
        sa.literal(0),
        CreditPayment.created_at,
        CreditPayment.amount,
        sa.null(),
        CreditPayment.payment_method,
        sa.func.coalesce(CreditPayment.payment_reference, ""),
    ).where(CreditPayment.credit_account_id == account.credit_account_id)
    movements = sa.union_all(usages, payments).subquery()
    rows = db.session.execute(
        # On the same instant a usage comes before a payment.
        sa.select(movements).order_by(movements.c.at.desc(), movements.c.rank.desc()).limit(limit)
    ).mappings()
    return CustomerCredit(
        account=account,
        activity=[dict(row) for row in rows],
        request_allowed=allowed,
        request=request_latest(account.credit_account_id),
    )


def ledger_outstanding(account_id: uuid.UUID) -> Decimal:
    """What the usages say is owed: the right-hand side of the ledger invariant."""
    return sum((owed for _, owed, _ in account_usages(account_id)), Decimal("0"))


def written_off_total() -> Decimal:
    """What the organization wrote off (out of the aging report, shown beside it)."""
    return db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(CreditPayment.amount), 0)).where(
            CreditPayment.kind == "write_off"
        )
    )


ORDER_SUGGESTIONS = 8


def order_suggestions(customer_id: uuid.UUID, prefix: str) -> list:
    """The customer's completed orders not yet charged whose number starts with `prefix`,
    newest first (the charge form's suggestions)."""
    charged = sa.exists().where(CreditUsage.order_id == Purchase.order_id)
    return db.session.execute(
        sa.select(Purchase.order_number, Purchase.total, Purchase.completed_at)
        .where(
            Purchase.customer_id == customer_id,
            Purchase.status == "completed",
            Purchase.order_number.startswith(prefix.strip().upper(), autoescape=True),
            ~charged,
        )
        .order_by(Purchase.order_number.desc())
        .limit(ORDER_SUGGESTIONS)
    ).all()


def order_for_charge(customer_id: uuid.UUID, order_number: str) -> uuid.UUID:
    """The internal id of the customer's order with this number; ValueError (in Spanish) for a
    number that is unknown, cancelled or another customer's."""
    number = order_number.strip().upper()
    orders = db.session.execute(
        sa.select(Purchase.order_id, Purchase.customer_id, Purchase.status).where(
            Purchase.order_number == number
        )
    ).all()
    if not orders:
        raise ValueError(f"No hay ninguna orden {number}.")
    own = [order for order in orders if order.customer_id == customer_id]
    if not own:
        raise ValueError(f"La orden {number} es de otro cliente.")
    if len(own) > 1:
        raise ValueError(f"Hay varias órdenes {number}: consulte con Órdenes.")
    if own[0].status != "completed":
        raise ValueError(f"La orden {number} está anulada.")
    return own[0].order_id
