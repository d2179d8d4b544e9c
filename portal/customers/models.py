"""Customers, their addresses and their RFM segment."""

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, created_at, updated_at, uuid_pk

CUSTOMER_STATUSES = {"active": "Activo", "inactive": "Inactivo", "blocked": "Bloqueado"}
CUSTOMER_TYPES = {"b2c": "Persona", "b2b": "Empresa"}
LOYALTY_TIERS = {"bronze": "Bronce", "silver": "Plata", "gold": "Oro", "platinum": "Platino"}
DOCUMENT_TYPES = {"cedula": "Cédula", "ruc": "RUC", "passport": "Pasaporte", "other": "Otro"}
ADDRESS_TYPES = {"shipping": "Envío", "billing": "Facturación", "both": "Envío y facturación"}
GENDERS = {
    "female": "Femenino",
    "male": "Masculino",
    "other": "Otro",
    "undisclosed": "Prefiere no decir",
}
LANGUAGES = {"es": "Español", "en": "Inglés"}


# customers.full_name, a generated column (migration 0021_timeline).
FULL_NAME = "coalesce(company_name, first_name || ' ' || last_name)"

# The per-organization unique constraints: the column each guards and its Spanish name.
UNIQUE_FIELDS = {
    "unique_org_email": ("email", "correo"),
    "unique_org_phone": ("phone", "teléfono"),
    "unique_org_document": ("document_number", "documento"),
}


class Customer(TenantMixin, db.Model):
    """A person or company that buys from the organization."""

    __tablename__ = "customers"

    customer_id: Mapped[uuid.UUID] = uuid_pk()
    customer_type: Mapped[str] = mapped_column(sa.String(20), default="b2c")
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    # A company's legal name (b2b, required there); first and last name are then its contact.
    company_name: Mapped[str | None] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(255))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    document_type: Mapped[str | None] = mapped_column(sa.String(20))
    document_number: Mapped[str | None] = mapped_column(sa.String(50))
    birth_date: Mapped[date | None]
    gender: Mapped[str | None] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    loyalty_tier: Mapped[str | None] = mapped_column(sa.String(20), default="bronze")
    preferred_language: Mapped[str | None] = mapped_column(sa.String(10), default="es")
    marketing_consent: Mapped[bool | None] = mapped_column(default=False)
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(sa.String(255)))
    metadata_: Mapped[dict | None] = mapped_column("metadata", JSONB)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()
    last_purchase_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    version_id: Mapped[int] = mapped_column(default=1)
    # Search keys maintained by PostgreSQL (generated columns), read-only here.
    search_name: Mapped[str] = mapped_column(
        sa.Text, sa.Computed("search_normalize(first_name || ' ' || last_name)")
    )
    phone_digits: Mapped[str] = mapped_column(
        sa.Text, sa.Computed("regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g')")
    )
    document_key: Mapped[str] = mapped_column(
        sa.Text,
        sa.Computed(
            "upper(regexp_replace(coalesce(document_number, ''), '[^0-9A-Za-z]', '', 'g'))"
        ),
    )
    # The name staff read, in Python and in SQL alike: the company's, or the person's.
    full_name: Mapped[str] = mapped_column(sa.Text, sa.Computed(FULL_NAME))
    activity_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True),
        sa.Computed("greatest(created_at, updated_at, last_purchase_at)"),
    )

    # A stale edit fails with StaleDataError instead of overwriting someone else's save.
    __mapper_args__ = {"version_id_col": version_id}

    @property
    def contact_name(self) -> str:
        """The person behind the customer: the contact of a company, or the customer."""
        return f"{self.first_name} {self.last_name}"


class Address(TenantMixin, db.Model):
    """A shipping and/or billing address of a customer."""

    __tablename__ = "addresses"

    address_id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    address_type: Mapped[str] = mapped_column(sa.String(20), default="shipping")
    recipient_name: Mapped[str | None] = mapped_column(sa.String(255))
    address_line1: Mapped[str] = mapped_column(sa.String(255))
    address_line2: Mapped[str | None] = mapped_column(sa.String(255))
    city: Mapped[str] = mapped_column(sa.String(100))
    state: Mapped[str | None] = mapped_column(sa.String(100))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    country: Mapped[str] = mapped_column(sa.String(3), default="PA")
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    is_default: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()


# The kinds of the customer's activity timeline, in its filter's order.
TIMELINE_KINDS = {
    "change": "Cambios de datos",
    "credit": "Crédito",
    "tier": "Nivel de lealtad",
    "segment": "Segmento",
    "note": "Notas",
}


class CustomerNote(TenantMixin, db.Model):
    """A staff note on a customer: append-only (the app role may only insert and read)."""

    __tablename__ = "customer_notes"

    note_id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    body: Mapped[str] = mapped_column(sa.Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
