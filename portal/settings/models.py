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
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime | None] = updated_at()
