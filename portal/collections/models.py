"""Collections rows: the collector of an account, the contact log, promises to pay."""

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.credit.models import MONEY
from portal.extensions import db
from portal.models import TenantMixin, created_at, uuid_pk

CHANNELS = {
    "call": "Llamada",
    "visit": "Visita",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "email": "Correo",
    "letter": "Carta",
}
OUTCOMES = {
    "contacted": "Contactado",
    "no_answer": "Sin respuesta",
    "wrong_number": "Número equivocado",
    "promise": "Promesa de pago",
    "dispute": "Disputa",
}
# Outcomes only the system records (the nightly dunning run, a statement staff e-mailed from
# the statement page), never offered in the contact form.
SYSTEM_OUTCOMES = {"reminder": "Recordatorio enviado", "statement_sent": "Estado de cuenta enviado"}
PROMISE_STATES = {"open": "Vigente", "kept": "Cumplida", "broken": "Incumplida"}


class CollectionAssignment(TenantMixin, db.Model):
    """The collector working an account (one per account; the audit log keeps who had it)."""

    __tablename__ = "collection_assignments"

    credit_account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    collector_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    assigned_at: Mapped[datetime] = created_at()


class CollectionContact(TenantMixin, db.Model):
    """One contact with the customer about an overdue account; append-only."""

    __tablename__ = "collection_contacts"

    contact_id: Mapped[uuid.UUID] = uuid_pk()
    credit_account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    channel: Mapped[str] = mapped_column(sa.String(20))
    outcome: Mapped[str] = mapped_column(sa.String(20))
    note: Mapped[str | None] = mapped_column(sa.Text)
    next_action_on: Mapped[date | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()


class CollectionPromise(TenantMixin, db.Model):
    """A promise to pay `amount` by `due_on`, made in a contact; settled by the nightly job."""

    __tablename__ = "collection_promises"

    promise_id: Mapped[uuid.UUID] = uuid_pk()
    credit_account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    contact_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    promised_on: Mapped[date]
    due_on: Mapped[date]
    state: Mapped[str] = mapped_column(sa.String(10), default="open")
    settled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class DunningLevel(TenantMixin, db.Model):
    """A reminder the organization sends once an account is `days_overdue` days late."""

    __tablename__ = "dunning_levels"

    level_id: Mapped[uuid.UUID] = uuid_pk()
    days_overdue: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(80))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    attach_statement: Mapped[bool] = mapped_column(default=False)  # the e-mail carries it
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )


class DunningSend(TenantMixin, db.Model):
    """One level sent to one account (once): by e-mail, or as a letter staff print and mail."""

    __tablename__ = "dunning_sends"

    send_id: Mapped[uuid.UUID] = uuid_pk()
    credit_account_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    level_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    contact_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    channel: Mapped[str] = mapped_column(sa.String(10))
    sent_on: Mapped[date]
    days_overdue: Mapped[int]
    overdue: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    oldest_due_on: Mapped[date]
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    letter_mailed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    letter_mailed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
