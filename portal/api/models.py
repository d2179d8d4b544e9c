"""API keys of an organization and the first answers to idempotent requests."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, created_at, uuid_pk

# What a key may be allowed to do; the label is what org admins read.
SCOPES = {
    "customers:read": "Buscar clientes",
    "credit:read": "Consultar crédito",
    "credit:charge": "Cargar y anular crédito",
}


class ApiKey(TenantMixin, db.Model):
    """A key the order service calls the API with; only the SHA-256 of its secret is stored.

    The app role cannot read `secret_hash` (column grants): it is deferred and never loaded;
    authentication gets it only through api_key_lookup().
    """

    __tablename__ = "api_keys"

    api_key_id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(100))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    secret_hash: Mapped[str] = mapped_column(sa.CHAR(64), deferred=True, deferred_raiseload=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class IdempotencyRecord(TenantMixin, db.Model):
    """The first answer given to an Idempotency-Key, with a digest of the request it answered."""

    __tablename__ = "api_idempotency_keys"

    idempotency_key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    request_hash: Mapped[str] = mapped_column(sa.CHAR(64))
    order_number: Mapped[str] = mapped_column(sa.String(64))
    usage_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    response: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at()
