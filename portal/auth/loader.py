"""The session's user: Flask-Login's loader, served from a short-lived Redis copy of the row.

A request needs the user's id, organization, roles, name, email and the fields that decide
whether the session still holds (is_active, sessions_valid_after, the temporary password).
Those are cached per user for USER_CACHE_SECONDS and dropped whenever a transaction that
changed them commits, so a role removed, a deactivation or a password reset takes effect on
the next request. The revocation check and the cached copy come back in one Redis round trip.
"""

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import g, session
from sqlalchemy import event
from sqlalchemy.orm import Session, make_transient_to_detached

from portal.auth.models import StaffUser
from portal.cache import cache_drop_on_commit
from portal.db import set_actor, set_organization
from portal.extensions import db, login_manager
from portal.security import REVOKED_KEY
from portal.tasks import redis_connection

USER_CACHE_KEY = "portal:staff-user:{}"
# The longest a copy may outlive a change whose invalidation raced with a concurrent load.
USER_CACHE_SECONDS = 60
# What a request reads from the user; a change to any of them drops the cached copy.
CACHED_FIELDS = (
    "email",
    "full_name",
    "roles",
    "is_active",
    "sessions_valid_after",
    "password_temporary_until",
)
_TIMES = ("sessions_valid_after", "password_temporary_until")
_UNSET = object()


def _user_key(user_id: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    try:
        organization_text, user_text = user_id.split(":")
        return uuid.UUID(organization_text), uuid.UUID(user_text)
    except (AttributeError, ValueError):
        return None


def session_revoked(sid: str) -> bool:
    """Whether the session id was revoked; fetches the user's cached copy in the same trip."""
    pipeline = redis_connection().pipeline(transaction=False)
    pipeline.exists(REVOKED_KEY.format(sid))
    key = _user_key(session.get("_user_id"))
    if key is not None:
        pipeline.get(USER_CACHE_KEY.format(key[1]))
    revoked, *cached = pipeline.execute()
    g.cached_staff_user = cached[0] if cached else None
    return bool(revoked)


def _encode(user: StaffUser) -> str:
    values = {field: getattr(user, field) for field in CACHED_FIELDS}
    for field in _TIMES:
        values[field] = values[field].timestamp() if values[field] else None
    return json.dumps(values | {"organization_id": str(user.organization_id)})


def _decode(raw: bytes, organization_id: uuid.UUID, staff_user_id: uuid.UUID) -> StaffUser | None:
    values = json.loads(raw)
    if values.pop("organization_id") != str(organization_id):
        return None
    for field in _TIMES:
        if values[field] is not None:
            values[field] = datetime.fromtimestamp(values[field], UTC)
    user = StaffUser(organization_id=organization_id, staff_user_id=staff_user_id, **values)
    # A persistent, clean instance: what the request reads costs no SQL; the rest (the
    # password hash, the login counters) is loaded only if something asks for it.
    make_transient_to_detached(user)
    return db.session.merge(user, load=False)


@login_manager.user_loader
def load_user(user_id: str):
    """The session's user, inside its organization's scope and stated as the audit actor."""
    key = _user_key(user_id)
    if key is None:
        return None
    organization_id, staff_user_id = key
    set_organization(organization_id)
    raw = g.pop("cached_staff_user", _UNSET)
    user = _decode(raw, organization_id, staff_user_id) if isinstance(raw, bytes) else None
    if user is None:
        user = db.session.scalar(
            sa.select(StaffUser).where(StaffUser.staff_user_id == staff_user_id)
        )
        if user is not None and raw is not _UNSET:
            redis_connection().set(
                USER_CACHE_KEY.format(staff_user_id), _encode(user), ex=USER_CACHE_SECONDS
            )
    started = session.get("auth_at", 0)
    if (
        user is None
        or not user.is_active
        or (user.sessions_valid_after and started < user.sessions_valid_after.timestamp())
    ):
        set_organization(None)
        return None
    # Stated now, it travels in the scope statement of the request's first transaction.
    set_actor(user.staff_user_id, user.email)
    g.log_organization_id = str(organization_id)
    g.log_user_id = str(staff_user_id)
    return user


@event.listens_for(Session, "after_flush")
def _note_stale_users(session, flush_context):
    """Drop the cached copies of the users this transaction's changes make stale."""
    cache_drop_on_commit(
        session,
        {
            USER_CACHE_KEY.format(user.staff_user_id)
            for user in (*session.dirty, *session.deleted)
            if isinstance(user, StaffUser)
            and any(sa.inspect(user).attrs[f].history.has_changes() for f in CACHED_FIELDS)
        },
    )
