"""Passwords and authentication: Argon2id hashes, login back-off per account, session rotation."""

import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, session
from flask_login import login_user, logout_user
from zxcvbn import zxcvbn
from zxcvbn.matching import RANKED_DICTIONARIES

from portal.audit import SYSTEM_ACTOR, audit_record
from portal.auth.models import StaffUser
from portal.db import set_organization
from portal.extensions import db
from portal.security import session_fingerprint, session_revoke
from portal.transaction import atomic

log = logging.getLogger(__name__)
password_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
_DUMMY_HASH = password_hasher.hash("timing-equaliser")

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128
TEMPORARY_PASSWORD_LIFETIME = timedelta(hours=24)
# The 30,000 most common leaked passwords that zxcvbn ships (lowercase).
COMMON_PASSWORDS = RANKED_DICTIONARIES["passwords"]
ZXCVBN_MAX_LENGTH = 72  # zxcvbn refuses longer input; the first 72 characters decide
ZXCVBN_MIN_SCORE = 3  # "safely unguessable": about 10^8 guesses or more

# One message for an unknown email, a wrong password, an inactive account and a back-off.
INVALID_CREDENTIALS = "Correo o contraseña incorrectos."
TEMPORARY_EXPIRED = "Su contraseña temporal venció. Pida a un administrador que se la restablezca."


class PasswordError(ValueError):
    """A password that cannot be used, with a Spanish message and the form field it concerns."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


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


def password_check(password: str, *, user_inputs: Iterable[str] = ()) -> None:
    """Refuse a password shorter than 12 characters, too long, common or easy to guess."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise PasswordError(
            f"La contraseña debe tener al menos {PASSWORD_MIN_LENGTH} caracteres.", "password"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise PasswordError(
            f"La contraseña admite como máximo {PASSWORD_MAX_LENGTH} caracteres.", "password"
        )
    words = [part for text in user_inputs for part in text.lower().replace("@", " ").split()]
    if (
        password.lower() in COMMON_PASSWORDS
        or zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=words)["score"] < ZXCVBN_MIN_SCORE
    ):
        raise PasswordError(
            "Esa contraseña es demasiado común o fácil de adivinar. Use una frase de varias"
            " palabras que no contenga su nombre ni su correo.",
            "password",
        )


def staff_login_lookup(email: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(organization_id, staff_user_id) of every account with this email, via the narrow function.

    Emails are unique per organization, so one address may have an account in several.
    """
    rows = db.session.execute(
        sa.text(
            "SELECT organization_id, staff_user_id FROM staff_login_lookup(:email)"
            " ORDER BY organization_id"
        ),
        {"email": email},
    )
    return [(row.organization_id, row.staff_user_id) for row in rows]


def _locked_user(organization_id: uuid.UUID, staff_user_id: uuid.UUID) -> StaffUser:
    set_organization(organization_id)
    return db.session.scalar(
        sa.select(StaffUser).where(StaffUser.staff_user_id == staff_user_id).with_for_update()
    )


def _temporary_expired(user: StaffUser, now: datetime) -> bool:
    return user.password_temporary_until is not None and user.password_temporary_until <= now


def staff_authenticate(*, email: str, password: str) -> LoginResult:
    """Check credentials; wrong ones push the account's next allowed attempt back exponentially.

    Every refusal (unknown email, wrong password, inactive account, attempt during the back-off)
    gets the same message and costs one Argon2 verification, so none of them tells an attacker
    whether the account exists.
    """
    now = datetime.now(UTC)
    candidates = staff_login_lookup(email)
    if not candidates:
        _password_matches(_DUMMY_HASH, password)
        log.info("login failed", extra={"reason": "unknown_email"})
        return LoginResult(None, INVALID_CREDENTIALS)
    failed = []
    for organization_id, staff_user_id in candidates:
        user = _locked_user(organization_id, staff_user_id)
        if user.locked_until is not None and user.locked_until > now:
            _password_matches(_DUMMY_HASH, password)
            log.info("login refused", extra={"reason": "backoff", "user_id": str(staff_user_id)})
        elif not _password_matches(user.password_hash, password) or not user.is_active:
            failed.append((organization_id, staff_user_id))
        elif _temporary_expired(user, now):
            db.session.rollback()
            return LoginResult(None, TEMPORARY_EXPIRED)
        else:
            _record_success(user, password, now)
            return LoginResult(user)
        db.session.rollback()
    # Only now: a person with accounts in two organizations is not penalised in the other one.
    for organization_id, staff_user_id in failed:
        _record_failure(_locked_user(organization_id, staff_user_id), now)
    set_organization(None)
    return LoginResult(None, INVALID_CREDENTIALS)


def _record_success(user: StaffUser, password: str, now: datetime) -> None:
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = password_hash(password)
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    db.session.commit()


def login_backoff(failed_login_count: int) -> timedelta | None:
    """How long an account waits after its n-th consecutive failure: 2^(n - max) s, capped.

    With LOGIN_MAX_FAILURES = 5: nothing for the first four, then 1 s, 2 s, 4 s … up to
    LOGIN_LOCK_MINUTES (15). A guesser is slowed to a crawl; the owner is never locked out long.
    """
    config = current_app.config
    excess = failed_login_count - config["LOGIN_MAX_FAILURES"]
    if excess < 0:
        return None
    cap = config["LOGIN_LOCK_MINUTES"] * 60
    return timedelta(seconds=min(2 ** min(excess, 20), cap))


def _record_failure(user: StaffUser, now: datetime) -> None:
    user.failed_login_count += 1
    backoff = login_backoff(user.failed_login_count)
    if backoff is not None:
        user.locked_until = now + backoff
        if user.failed_login_count == current_app.config["LOGIN_MAX_FAILURES"]:
            audit_record(
                action="staff.locked",
                entity_type="staff_user",
                entity_id=user.staff_user_id,
                after={"failed_login_count": user.failed_login_count},
                actor=SYSTEM_ACTOR,  # nobody is logged in yet: the lockout is automatic
            )
    db.session.commit()
    log.info("login failed", extra={"reason": "bad_password", "user_id": str(user.staff_user_id)})


@atomic
def staff_password_change(
    *, staff_user_id: uuid.UUID, current_password: str, new_password: str
) -> None:
    """Replace the user's password; every session that began before now stops working."""
    now = datetime.now(UTC)
    user = db.session.scalar(
        sa.select(StaffUser).where(StaffUser.staff_user_id == staff_user_id).with_for_update()
    )
    if not _password_matches(user.password_hash, current_password):
        raise PasswordError("La contraseña actual no es correcta.", "current_password")
    if _temporary_expired(user, now):
        raise PasswordError(TEMPORARY_EXPIRED)
    if new_password == current_password:
        raise PasswordError("La nueva contraseña debe ser distinta de la actual.", "password")
    password_check(new_password, user_inputs=[user.email, user.full_name])
    user.password_hash = password_hash(new_password)
    user.password_temporary_until = None
    user.sessions_valid_after = now
    audit_record(
        action="staff.password_changed",
        entity_type="staff_user",
        entity_id=staff_user_id,
        actor=user,
    )


def session_start(user: StaffUser) -> None:
    """Log the user in on a brand-new session (fresh id, fresh timers, this browser only)."""
    session_revoke(session.get("sid"))
    session.clear()
    login_user(user)
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(32)
    session["auth_at"] = session["seen_at"] = time.time()
    session["fingerprint"] = session_fingerprint()
    if user.password_temporary_until is not None:
        session["password_change_required"] = True


def session_end() -> None:
    """Log out and revoke the session id so a copied cookie stops working too."""
    session_revoke(session.get("sid"))
    logout_user()
    session.clear()
