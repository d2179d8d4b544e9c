"""The durable inbox of received events and the purchases projection built from order events."""

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin

INBOX_STATUSES = {"received": "Recibido", "processed": "Procesado", "dead": "Fallido"}
TIER_EVENT = "pricing.loyalty.tier_changed"
# The event types ingestion accepts and the worker applies.
EVENT_TYPES = {
    TIER_EVENT: "Cambio de nivel de lealtad",
    "orders.order.completed": "Orden completada",
    "orders.order.cancelled": "Orden cancelada",
}


class InboxEvent(TenantMixin, db.Model):
    """An accepted event; written before it is queued, so nothing is lost if Redis is down."""

    __tablename__ = "event_inbox"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    event_type: Mapped[str] = mapped_column(sa.String(100))
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    payload: Mapped[dict] = mapped_column(JSONB)
    payload_hash: Mapped[str] = mapped_column(sa.CHAR(64))
    status: Mapped[str] = mapped_column(sa.String(20), default="received")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    processed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Purchase(TenantMixin, db.Model):
    """One order of a customer, as the Orders service last reported it."""

    __tablename__ = "purchases"

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    order_number: Mapped[str | None] = mapped_column(sa.String(30))
    total: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    completed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    status: Mapped[str] = mapped_column(sa.String(20))
    event_occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )


class EventKey(TenantMixin, db.Model):
    """A per-organization signing secret for /api/events, named on the wire by X-Key-Id.

    The app role cannot read `secret` (column grants); ingestion gets it only through
    event_key_lookup(), so select the other columns explicitly.
    """

    __tablename__ = "event_keys"

    key_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    secret: Mapped[str] = mapped_column(sa.Text)
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
