"""Staff user management; every change is audited."""

import secrets
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.audit import Actor, audit_record
from portal.auth.models import ROLES, StaffUser
from portal.auth.services import (
    TEMPORARY_PASSWORD_LIFETIME,
    PasswordError,
    password_check,
    password_hash,
)
from portal.extensions import db
from portal.tasks import redis_connection
from portal.transaction import atomic

# A reset's temporary password waits here for the admin's next page load, then is gone.
TEMPORARY_PASSWORD_KEY = "portal:temporary-password:{}:{}"  # noqa: S105 (sid, user id)
TEMPORARY_PASSWORD_DISPLAY_SECONDS = 300


class StaffUserError(ValueError):
    """A staff user change that cannot be made, with a message for the admin."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _snapshot(user: StaffUser) -> dict:
    return {
        "email": user.email,
        "full_name": user.full_name,
        "roles": sorted(user.roles),
        "is_active": user.is_active,
    }


def _check_roles(roles: list[str]) -> list[str]:
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise StaffUserError("Elija al menos un rol válido.", "roles")
    return sorted(set(roles))


def staff_user_list() -> list[StaffUser]:
    """The organization's staff users, by name."""
    return list(db.session.scalars(sa.select(StaffUser).order_by(StaffUser.full_name)))


def staff_user_get(staff_user_id: uuid.UUID) -> StaffUser | None:
    """One staff user of the current organization, or None."""
    return db.session.scalar(sa.select(StaffUser).where(StaffUser.staff_user_id == staff_user_id))


@atomic
def staff_user_create(
    *, email: str, full_name: str, roles: list[str], password: str, temporary: bool, actor: Actor
) -> StaffUser:
    """Create a staff user; the email must not be used by another user of this organization.

    A `temporary` password (one an admin typed) expires like a reset's and must be changed at
    the first login. Another organization's users are never consulted: an address may have an
    account in several organizations, and nothing here tells whether it does.
    """
    email, full_name = email.strip().lower(), full_name.strip()
    try:
        password_check(password, user_inputs=[email, full_name])
    except PasswordError as error:
        raise StaffUserError(str(error), "password") from None
    user = StaffUser(
        email=email,
        full_name=full_name,
        roles=_check_roles(roles),
        password_hash=password_hash(password),
        password_temporary_until=(
            datetime.now(UTC) + TEMPORARY_PASSWORD_LIFETIME if temporary else None
        ),
    )
    try:
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError:
        raise StaffUserError("Ya existe un usuario con ese correo.", "email") from None
    audit_record(
        action="staff.created",
        entity_type="staff_user",
        entity_id=user.staff_user_id,
        after=_snapshot(user),
        actor=actor,
    )
    return user


@atomic
def staff_user_update(
    *, user: StaffUser, full_name: str, roles: list[str], actor: StaffUser
) -> None:
    """Change a user's name and roles; an admin cannot remove their own admin role."""
    roles = _check_roles(roles)
    if user.staff_user_id == actor.staff_user_id and "org_admin" not in roles:
        raise StaffUserError("No puede quitarse a sí mismo el rol de administrador.", "roles")
    before = _snapshot(user)
    user.full_name = full_name.strip()
    user.roles = roles
    audit_record(
        action="staff.updated",
        entity_type="staff_user",
        entity_id=user.staff_user_id,
        before=before,
        after=_snapshot(user),
        actor=actor,
    )


@atomic
def staff_user_set_active(*, user: StaffUser, active: bool, actor: StaffUser) -> None:
    """Activate or deactivate a user; deactivation ends their sessions at the next request."""
    if user.staff_user_id == actor.staff_user_id and not active:
        raise StaffUserError("No puede desactivar su propia cuenta.")
    before = _snapshot(user)
    user.is_active = active
    if not active:
        user.sessions_valid_after = datetime.now(UTC)
    audit_record(
        action="staff.activated" if active else "staff.deactivated",
        entity_type="staff_user",
        entity_id=user.staff_user_id,
        before=before,
        after=_snapshot(user),
        actor=actor,
    )


@atomic
def staff_user_reset_password(*, user: StaffUser, actor: StaffUser) -> str:
    """Give the user a new random temporary password (24 h, to be changed) and unlock them."""
    temporary = secrets.token_urlsafe(12)
    now = datetime.now(UTC)
    user.password_hash = password_hash(temporary)
    user.password_temporary_until = now + TEMPORARY_PASSWORD_LIFETIME
    # Same clock as the session's auth_at: whoever holds the old password is logged out.
    user.sessions_valid_after = now
    user.failed_login_count = 0
    user.locked_until = None
    audit_record(
        action="staff.password_reset",
        entity_type="staff_user",
        entity_id=user.staff_user_id,
        after={"password_temporary_until": user.password_temporary_until},
        actor=actor,
    )
    return temporary


def temporary_password_hold(*, sid: str, staff_user_id: uuid.UUID, password: str) -> None:
    """Keep a reset's password for the admin's next page (POST, redirect, GET), briefly."""
    redis_connection().set(
        TEMPORARY_PASSWORD_KEY.format(sid, staff_user_id),
        password,
        ex=TEMPORARY_PASSWORD_DISPLAY_SECONDS,
    )


def temporary_password_take(*, sid: str, staff_user_id: uuid.UUID) -> str | None:
    """The held password, removed as it is read: a reload finds nothing."""
    pipeline = redis_connection().pipeline()  # MULTI/EXEC: read and delete as one step
    pipeline.get(TEMPORARY_PASSWORD_KEY.format(sid, staff_user_id))
    pipeline.delete(TEMPORARY_PASSWORD_KEY.format(sid, staff_user_id))
    password, _ = pipeline.execute()
    return password.decode() if password is not None else None
