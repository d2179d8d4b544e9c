"""Passwords and authentication: Argon2id hashes, lockout per account, session rotation."""

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, session
from flask_login import login_user, logout_user

from portal.audit import audit_record
from portal.auth.models import StaffUser
from portal.db import set_organization
from portal.extensions import db
from portal.security import session_revoke

log = logging.getLogger(__name__)
password_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
_DUMMY_HASH = password_hasher.hash("timing-equaliser")

INVALID_CREDENTIALS = "Correo o contraseña incorrectos."
ACCOUNT_LOCKED = "La cuenta está bloqueada temporalmente por intentos fallidos. Intente más tarde."


@dataclass(frozen=True)
class LoginResult:
    """Outcome of a login attempt: the user on success, a message otherwise."""

    user: StaffUser | None
    error: str | None = None


def password_hash(password: str) -> str:
    """Argon2id hash of a password."""
    return password_hasher.hash(password)


def _password_matches(stored_hash: str, password: str) -> bool:
    try:
        return password_hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def staff_login_lookup(email: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(organization_id, staff_user_id) of an email, via the narrow SECURITY DEFINER function."""
    row = db.session.execute(
        sa.text("SELECT organization_id, staff_user_id FROM staff_login_lookup(:email)"),
        {"email": email},
    ).first()
    return (row.organization_id, row.staff_user_id) if row else None


def staff_authenticate(*, email: str, password: str) -> LoginResult:
    """Check credentials, counting failures per account and locking it after too many."""
    found = staff_login_lookup(email)
    if found is None:
        _password_matches(_DUMMY_HASH, password)
        log.info("login failed", extra={"reason": "unknown_email"})
        return LoginResult(None, INVALID_CREDENTIALS)
    organization_id, staff_user_id = found
    set_organization(organization_id)
    user = db.session.scalar(
        sa.select(StaffUser).where(StaffUser.staff_user_id == staff_user_id).with_for_update()
    )
    now = datetime.now(UTC)
    if user.locked_until and user.locked_until > now:
        db.session.rollback()
        log.info("login refused", extra={"reason": "locked", "user_id": str(staff_user_id)})
        return LoginResult(None, ACCOUNT_LOCKED)
    if not _password_matches(user.password_hash, password) or not user.is_active:
        _record_failure(user, now)
        return LoginResult(None, INVALID_CREDENTIALS)
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = password_hash(password)
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()
    return LoginResult(user)


def _record_failure(user: StaffUser, now: datetime) -> None:
    config = current_app.config
    user.failed_login_count += 1
    if user.failed_login_count >= config["LOGIN_MAX_FAILURES"]:
        user.locked_until = now + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
        user.failed_login_count = 0
        audit_record(
            action="staff.locked",
            entity_type="staff_user",
            entity_id=user.staff_user_id,
            after={"locked_until": user.locked_until},
        )
    db.session.commit()
    log.info("login failed", extra={"reason": "bad_password", "user_id": str(user.staff_user_id)})


def session_start(user: StaffUser) -> None:
    """Log the user in on a brand-new session (fresh id, fresh timers)."""
    session.clear()
    login_user(user)
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(32)
    session["auth_at"] = session["seen_at"] = time.time()


def session_end() -> None:
    """Log out and revoke the session id so a copied cookie stops working too."""
    session_revoke(session.get("sid"))
    logout_user()
    session.clear()
