"""Organizations and the staff users who log in to them."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models import TenantMixin, created_at, updated_at, uuid_pk

ROLES = {
    "branch_staff": "Personal de sucursal",
    "credit_staff": "Personal de crédito",
    "credit_approver": "Aprobador de crédito",
    "org_admin": "Administrador",
}


class Organization(db.Model):
    """A tenant: a retail company with its own customers, staff and ledger."""

    __tablename__ = "organizations"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = created_at()


class StaffUser(TenantMixin, UserMixin, db.Model):
    """A person working for one organization, with one or more roles."""

    __tablename__ = "staff_users"

    staff_user_id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(sa.String(255))
    full_name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.Text)
    roles: Mapped[list[str]] = mapped_column(ARRAY(sa.String(30)))
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    # Login back-off: no password of this account is checked before this moment.
    locked_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Set while the password is a temporary one an admin gave: it stops working at this moment
    # and must be changed before anything else.
    password_temporary_until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Sessions that began before this moment are refused (password reset, deactivation).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime | None] = updated_at()

    def get_id(self) -> str:
        """Flask-Login id: the organization travels with the user so the scope is set first."""
        return f"{self.organization_id}:{self.staff_user_id}"

    def has_role(self, *roles: str) -> bool:
        """True when the user holds any of the given roles."""
        return any(role in self.roles for role in roles)

    @property
    def role_labels(self) -> list[str]:
        """Spanish names of the user's roles."""
        return [ROLES[role] for role in self.roles if role in ROLES]
