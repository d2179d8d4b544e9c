"""The organization's settings row (typed columns; later features add theirs)."""

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, updated_at

DEFAULT_MAX_CREDIT_LIMIT = Decimal("50000.00")
DEFAULT_APPROVAL_LEVEL = Decimal("10000.00")
LATE_FEE_MODES = {
    "off": "Sin recargos",
    "fixed": "Monto fijo por mes",
    "percent": "Porcentaje mensual del saldo vencido",
}


class OrganizationSettings(TenantMixin, db.Model):
    """One row per organization, created on first use with the defaults."""

    __tablename__ = "organization_settings"

    max_credit_limit: Mapped[Decimal] = mapped_column(
        sa.Numeric(12, 2), default=DEFAULT_MAX_CREDIT_LIMIT
    )
    # Above this limit the deciding approver must also be an org admin.
    approval_level: Mapped[Decimal] = mapped_column(
        sa.Numeric(12, 2), default=DEFAULT_APPROVAL_LEVEL
    )
    # Printed in the header of customer statements.
    address: Mapped[str | None] = mapped_column(sa.Text)
    # Late fees (off by default): once a month per account overdue longer than the grace days,
    # a fixed amount or a percentage of the overdue order charges, at most the cap.
    late_fee_mode: Mapped[str] = mapped_column(sa.String(10), default="off")
    late_fee_amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    late_fee_percent: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    late_fee_grace_days: Mapped[int] = mapped_column(default=0)
    late_fee_cap: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime | None] = updated_at()
