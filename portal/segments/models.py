"""The customers' RFM segments, recomputed by the worker (portal/segments/services.py)."""

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, created_at, updated_at, uuid_pk

SEGMENTS = {
    "champions": "Campeones",
    "loyal": "Leales",
    "potential_loyalist": "Leales potenciales",
    "new": "Nuevos",
    "at_risk": "En riesgo",
    "lost": "Perdidos",
}


class CustomerSegment(TenantMixin, db.Model):
    """The customer's RFM scores and segment, recomputed by the worker."""

    __tablename__ = "customer_segments"

    segment_id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    segment_code: Mapped[str] = mapped_column(sa.String(50))
    rfm_recency: Mapped[int | None]
    rfm_frequency: Mapped[int | None]
    rfm_monetary: Mapped[int | None]
    rfm_score: Mapped[int | None] = mapped_column(
        sa.Computed("rfm_recency + rfm_frequency + rfm_monetary")
    )
    lifetime_value: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2), default=Decimal("0"))
    average_order_value: Mapped[Decimal | None] = mapped_column(
        sa.Numeric(12, 2), default=Decimal("0")
    )
    total_orders: Mapped[int | None] = mapped_column(default=0)
    days_since_last_purchase: Mapped[int | None]
    is_vip: Mapped[bool | None] = mapped_column(default=False)
    is_at_risk: Mapped[bool | None] = mapped_column(default=False)
    calculated_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


class CustomerSegmentChange(TenantMixin, db.Model):
    """A customer's segment before and after a recompute that changed it (append-only)."""

    __tablename__ = "customer_segment_changes"

    change_id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    previous_segment: Mapped[str] = mapped_column(sa.String(50))
    segment: Mapped[str] = mapped_column(sa.String(50))
    changed_at: Mapped[datetime] = created_at()
