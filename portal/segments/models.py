"""The customers' RFM segments, recomputed by the worker (portal/segments/services.py)."""

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal import clock
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
    last_purchase_on: Mapped[date | None]
    is_vip: Mapped[bool | None] = mapped_column(default=False)
    is_at_risk: Mapped[bool | None] = mapped_column(default=False)
    calculated_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()

    @property
    def days_since_last_purchase(self) -> int | None:
        """Days from the last purchase to today (Panama), computed on read: it changes daily."""
        if self.last_purchase_on is None:
            return None
        return (clock.today() - self.last_purchase_on).days


class SegmentRun(TenantMixin, db.Model):
    """One recompute: the snapshot it saw, the quintile boundaries it scored with, what it wrote."""

    __tablename__ = "segment_runs"

    run_id: Mapped[uuid.UUID] = uuid_pk()
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(sa.String(12))
    snapshot: Mapped[str] = mapped_column(sa.Text)
    buyers: Mapped[int]
    recency_bounds: Mapped[list[date] | None] = mapped_column(ARRAY(sa.Date))
    frequency_bounds: Mapped[list[int] | None] = mapped_column(ARRAY(sa.Integer))
    monetary_bounds: Mapped[list[Decimal] | None] = mapped_column(ARRAY(sa.Numeric(14, 2)))
    vip_bound: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    considered: Mapped[int]
    written: Mapped[int]


class CustomerSegmentChange(TenantMixin, db.Model):
    """A customer's segment before and after a recompute that changed it (append-only)."""

    __tablename__ = "customer_segment_changes"

    change_id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    previous_segment: Mapped[str] = mapped_column(sa.String(50))
    segment: Mapped[str] = mapped_column(sa.String(50))
    changed_at: Mapped[datetime] = created_at()
