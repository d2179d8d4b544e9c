"""Column helpers shared by the feature models."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import current_organization_id


def _scoped_organization() -> uuid.UUID:
    organization_id = current_organization_id()
    if organization_id is None:
        raise RuntimeError("No organization in scope; tenant rows need one")
    return organization_id


class TenantMixin:
    """Every tenant row carries organization_id, defaulted from the current scope."""

    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, default=_scoped_organization
    )


def uuid_pk() -> Mapped[uuid.UUID]:
    """Second half of a tenant table's (organization_id, id) primary key."""
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def created_at() -> Mapped[datetime]:
    """Creation time, set by the database."""
    return mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


def updated_at() -> Mapped[datetime | None]:
    """Last update time, set by the application on every change."""
    return mapped_column(sa.DateTime(timezone=True), onupdate=sa.func.now())
