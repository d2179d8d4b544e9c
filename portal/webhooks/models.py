"""Webhook subscriptions, the outbox of events and the deliveries (with their attempts)."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, created_at, uuid_pk


class WebhookSubscription(TenantMixin, db.Model):
    """A URL that receives the organization's events of some types, signed with its secret."""

    __tablename__ = "webhook_subscriptions"

    subscription_id: Mapped[uuid.UUID] = uuid_pk()
    url: Mapped[str] = mapped_column(sa.String(2000))
    secret: Mapped[str] = mapped_column(sa.Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class OutboxEvent(TenantMixin, db.Model):
    """An event, written in the transaction of the change it announces."""

    __tablename__ = "outbox_events"

    event_id: Mapped[uuid.UUID] = uuid_pk()
    event_type: Mapped[str] = mapped_column(sa.String(60))
    occurred_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    data: Mapped[dict] = mapped_column(JSONB)


class WebhookDelivery(TenantMixin, db.Model):
    """One event for one subscription: pending until the receiver answers 2xx."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[uuid.UUID] = uuid_pk()
    subscription_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    last_status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class WebhookAttempt(TenantMixin, db.Model):
    """One HTTP attempt of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"

    attempt_id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    attempted_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[int]
