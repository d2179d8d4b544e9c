"""Credit accounts and the ledger rows that move them."""

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, created_at, updated_at, uuid_pk

ACCOUNT_STATUSES = {
    "pending": "Pendiente",
    "approved": "Aprobada",
    "suspended": "Suspendida",
    "cancelled": "Rechazada",  # a rejected new line; the account can be requested again
    "closed": "Cerrada",
}
REQUEST_KINDS = {
    "new_line": "Línea nueva",
    "increase": "Aumento de límite",
    "write_off": "Castigo de saldo",
}
REQUEST_STATES = {"pending": "Pendiente", "approved": "Aprobada", "rejected": "Rechazada"}
USAGE_STATUSES = {
    "pending": "Pendiente",
    "paid": "Pagado",
    "overdue": "Vencido",
    "cancelled": "Anulado",
    "written_off": "Castigado",
    "waived": "Condonado",  # shown for a cancelled late fee; never stored
}
PAYMENT_METHODS = {
    "cash": "Efectivo",
    "card": "Tarjeta",
    "transfer": "Transferencia",
    "check": "Cheque",
}
PAYMENT_KINDS = {"payment": "Pago", "write_off": "Castigo"}
USAGE_KINDS = {"order": "Cargo", "late_fee": "Recargo por mora"}
MONEY = sa.Numeric(12, 2)


class CreditAccount(TenantMixin, db.Model):
    """A customer's line of credit; credit_available is computed by the database."""

    __tablename__ = "credit_accounts"

    credit_account_id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    credit_limit: Mapped[Decimal] = mapped_column(MONEY)
    credit_used: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    credit_available: Mapped[Decimal] = mapped_column(
        MONEY, sa.Computed("credit_limit - credit_used")
    )
    payment_term_days: Mapped[int] = mapped_column(default=30)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    approved_at: Mapped[date | None]
    approved_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    approval_notes: Mapped[str | None] = mapped_column(sa.Text)
    suspended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    suspension_reason: Mapped[str | None] = mapped_column(sa.Text)
    closed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    closure_reason: Mapped[str | None] = mapped_column(sa.Text)
    # An approver exempted the account from late fees (audited); the nightly job skips it.
    late_fees_exempt: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


class CreditRequest(TenantMixin, db.Model):
    """A request for a new line or a limit increase, and its decision (by someone else)."""

    __tablename__ = "credit_requests"

    credit_request_id: Mapped[uuid.UUID] = uuid_pk()
    credit_account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(sa.String(20))
    requested_limit: Mapped[Decimal | None] = mapped_column(MONEY)
    write_off_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    requested_term_days: Mapped[int | None]
    reason: Mapped[str] = mapped_column(sa.Text)
    requested_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    requested_at: Mapped[datetime] = created_at()
    state: Mapped[str] = mapped_column(sa.String(20), default="pending")
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    decision_notes: Mapped[str | None] = mapped_column(sa.Text)
    approved_limit: Mapped[Decimal | None] = mapped_column(MONEY)
    approved_term_days: Mapped[int | None]
    decision_seen_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class CreditUsage(TenantMixin, db.Model):
    """A charge against the account: for one order, or a late fee for one month (no order)."""

    __tablename__ = "credit_usages"

    usage_id: Mapped[uuid.UUID] = uuid_pk()
    credit_account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(sa.String(10), default="order")
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # A late fee's month (its first day); one fee per account and month.
    fee_period: Mapped[date | None]
    amount: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    due_date: Mapped[date]
    paid_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class CreditPayment(TenantMixin, db.Model):
    """Money received against the account."""

    __tablename__ = "credit_payments"

    payment_id: Mapped[uuid.UUID] = uuid_pk()
    credit_account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    kind: Mapped[str] = mapped_column(sa.String(20), default="payment")
    payment_method: Mapped[str | None] = mapped_column(sa.String(30))
    payment_reference: Mapped[str | None] = mapped_column(sa.String(255))
    payment_date: Mapped[date] = mapped_column(server_default=sa.func.current_date())
    idempotency_key: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reversed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reversed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reversal_reason: Mapped[str | None] = mapped_column(sa.Text)
    # The organization's next receipt number, taken by a trigger (write-offs have none).
    receipt_number: Mapped[int | None] = mapped_column(
        sa.BigInteger, server_default=sa.FetchedValue()
    )
    created_at: Mapped[datetime] = created_at()


class CreditPaymentAllocation(TenantMixin, db.Model):
    """The part of a payment applied to one usage (FIFO by due date, then creation).

    Append-only: a reversal adds a negative row per allocation it undoes, so the sum per usage
    is what is still applied and the history of what was paid and undone stays.
    """

    __tablename__ = "credit_payment_allocations"

    allocation_id: Mapped[uuid.UUID] = uuid_pk()
    payment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    usage_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reverses_allocation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()


class CreditAgingMonth(TenantMixin, db.Model):
    """The organization's outstanding credit by bucket at the end of a month (the current month:
    as of the last nightly run), kept for the collections dashboard's 12-month chart."""

    __tablename__ = "credit_aging_months"

    month: Mapped[date] = mapped_column(primary_key=True)
    computed_on: Mapped[date]
    not_due: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    days_1_30: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    days_31_60: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    days_61_90: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    days_90_plus: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
