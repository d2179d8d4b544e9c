"""Reading and changing the organization's settings."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from portal.audit import audit_record
from portal.auth.models import Organization, StaffUser
from portal.db import current_organization_id
from portal.extensions import db
from portal.settings.models import (
    DEFAULT_APPROVAL_LEVEL,
    DEFAULT_MAX_CREDIT_LIMIT,
    OrganizationSettings,
)
from portal.transaction import atomic

FIELDS = (
    "max_credit_limit",
    "approval_level",
    "address",
    "late_fee_mode",
    "late_fee_amount",
    "late_fee_percent",
    "late_fee_grace_days",
    "late_fee_cap",
)


def organization_settings_get(*, lock: str | None = None) -> OrganizationSettings:
    """The current organization's settings; lock="share" or "update" locks the row.

    The row is created with the defaults on first use. A decision that depends on a setting
    reads it with lock="share": decisions do not block each other, but a change of the setting
    waits for them (and they for it), so no decision commits against a stale value.
    """
    if lock is None:
        found = db.session.get(OrganizationSettings, current_organization_id())
        return found or OrganizationSettings(
            organization_id=current_organization_id(),
            max_credit_limit=DEFAULT_MAX_CREDIT_LIMIT,
            approval_level=DEFAULT_APPROVAL_LEVEL,
            late_fee_mode="off",
            late_fee_grace_days=0,
        )
    db.session.execute(
        pg_insert(OrganizationSettings)
        .values(organization_id=current_organization_id())
        .on_conflict_do_nothing(index_elements=["organization_id"])
    )
    return db.session.scalar(
        sa.select(OrganizationSettings)
        .where(OrganizationSettings.organization_id == current_organization_id())
        .with_for_update(read=lock == "share")
        .execution_options(populate_existing=True)
    )


@atomic
def organization_settings_update(*, actor: StaffUser, **values) -> OrganizationSettings:
    """Change the settings named in FIELDS (org admins), audited with before and after."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    settings = organization_settings_get(lock="update")
    before = {field: getattr(settings, field) for field in FIELDS}
    for field, value in values.items():
        setattr(settings, field, value)
    settings.updated_by = actor.staff_user_id
    db.session.flush()
    audit_record(
        action="settings.updated",
        entity_type="organization_settings",
        entity_id=settings.organization_id,
        before=before,
        after={field: getattr(settings, field) for field in FIELDS},
        actor=actor,
    )
    return settings


def organization_letterhead() -> tuple[str, str | None]:
    """The current organization's name and address, for printed documents (one statement)."""
    return db.session.execute(
        sa.select(Organization.name, OrganizationSettings.address)
        .outerjoin(
            OrganizationSettings,
            OrganizationSettings.organization_id == Organization.organization_id,
        )
        .where(Organization.organization_id == current_organization_id())
    ).one()
