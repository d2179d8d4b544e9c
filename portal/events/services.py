"""The event inbox's actions (retries of dead letters) and the signing keys."""

import secrets
import uuid

import sqlalchemy as sa

from portal.audit import SYSTEM_ACTOR, Actor, audit_record
from portal.db import current_organization_id
from portal.events.models import EventKey, InboxEvent
from portal.extensions import db
from portal.tasks import enqueue_scoped


def inbox_retry(*, event_ids: list[uuid.UUID] | None = None, actor: Actor) -> int:
    """Put dead letters (some, or all) back to 'received' and queue them again."""
    statement = (
        sa.update(InboxEvent)
        .where(InboxEvent.status == "dead")
        .values(status="received", last_error=None, processed_at=None)
        .returning(InboxEvent.event_id)
    )
    if event_ids is not None:
        statement = statement.where(InboxEvent.event_id.in_(event_ids))
    retried = [str(event_id) for event_id in db.session.scalars(statement)]
    if retried:
        audit_record(
            action="events.retried",
            entity_type="event_inbox",
            entity_id=retried[0] if len(retried) == 1 else f"{len(retried)} eventos",
            after={"event_ids": retried[:100], "count": len(retried)},
            actor=actor,
        )
    db.session.commit()
    for start in range(0, len(retried), 1000):
        enqueue_scoped(
            "portal.events.jobs:process_events",
            organization_id=current_organization_id(),
            event_ids=retried[start : start + 1000],
        )
    return len(retried)


def event_key_create(*, label: str = "") -> tuple[uuid.UUID, str]:
    """A new active signing key of the current organization; its secret is shown only now."""
    key_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    db.session.execute(
        sa.insert(EventKey).values(
            organization_id=current_organization_id(), key_id=key_id, secret=secret, label=label
        )
    )
    audit_record(
        action="events.key_created",
        entity_type="event_key",
        entity_id=key_id,
        after={"label": label},
        actor=SYSTEM_ACTOR,
    )
    db.session.commit()
    return key_id, secret


def event_key_revoke(*, key_id: uuid.UUID) -> bool:
    """Revoke one active key of the current organization; False if there is no such key."""
    revoked = db.session.scalar(
        sa.update(EventKey)
        .where(EventKey.key_id == key_id, EventKey.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
        .returning(EventKey.key_id)
    )
    if revoked is not None:
        audit_record(
            action="events.key_revoked",
            entity_type="event_key",
            entity_id=key_id,
            actor=SYSTEM_ACTOR,
        )
    db.session.commit()
    return revoked is not None


def event_keys_list() -> list:
    """The current organization's keys, newest first, without their secrets."""
    return db.session.execute(
        sa.select(
            EventKey.key_id, EventKey.label, EventKey.created_at, EventKey.revoked_at
        ).order_by(EventKey.created_at.desc())
    ).all()
