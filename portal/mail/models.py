"""The e-mail outbox: one row per message, written in the transaction that decides to send."""

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, created_at, uuid_pk

STATES = {
    "pending": "Pendiente",
    "sending": "Enviando",
    "sent": "Enviado",
    "failed": "No entregado",
}


class EmailOutbox(TenantMixin, db.Model):
    """A message to deliver; the worker moves it pending -> sending -> sent (or failed)."""

    __tablename__ = "email_outbox"

    outbox_id: Mapped[uuid.UUID] = uuid_pk()
    credit_account_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    send_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    to_address: Mapped[str] = mapped_column(sa.String(255))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[str] = mapped_column(sa.String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = created_at()
    claimed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    data_started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    # The account statement attached, rendered at send time (no end: none; no start: from the
    # account's opening).
    statement_start: Mapped[date | None]
    statement_end: Mapped[date | None]
    # The form that queued the message by hand: a double submit queues it once.
    idempotency_key: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
