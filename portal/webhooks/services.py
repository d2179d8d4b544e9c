"""The outbox: events written in the transaction of their change, fanned out to subscriptions.

A delivery row per (subscription, event) is inserted with the event, so nothing is lost if
Redis or the worker is down: once the transaction commits a job is queued for the organization,
and the sweeper (every minute) finds any delivery that is due and was not attempted.
"""

import json
import logging
import secrets
import uuid

import sqlalchemy as sa
from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.audit import Actor, audit_record
from portal.db import current_organization_id
from portal.extensions import db
from portal.tasks import enqueue_scoped
from portal.transaction import atomic
from portal.webhooks.models import WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)
# A delivery for every active subscription to the type of each row of {events}
# (organization_id, event_id, event_type).
FAN_OUT = """
    INSERT INTO webhook_deliveries (organization_id, subscription_id, event_id)
    SELECT e.organization_id, s.subscription_id, e.event_id
    FROM {events} e
    JOIN webhook_subscriptions s
      ON s.disabled_at IS NULL AND e.event_type = ANY(s.event_types)
"""
_PUBLISH = sa.text(
    """
    WITH event AS (
        INSERT INTO outbox_events (organization_id, event_type, data)
        VALUES (:org, :event_type, CAST(:data AS jsonb))
        RETURNING organization_id, event_id, event_type
    )
    """
    + FAN_OUT.format(events="event")
    + " RETURNING delivery_id"
)
_SUBSCRIBED = sa.text(
    "SELECT EXISTS (SELECT FROM webhook_subscriptions"
    " WHERE disabled_at IS NULL AND :event_type = ANY(event_types))"
)
QUEUED = "webhook_organizations"  # session.info: organizations with deliveries to start


def outbox_publish(*, event_type: str, data: dict) -> None:
    """Record an event in the current transaction; its deliveries start once it commits."""
    payload = json.dumps(data, default=str, sort_keys=True)
    fanned = db.session.execute(
        _PUBLISH, {"org": current_organization_id(), "event_type": event_type, "data": payload}
    ).first()
    if fanned is not None:
        deliveries_start_after_commit()


def outbox_subscribed(event_type: str) -> bool:
    """Whether any active subscription wants this type (bulk publishers ask before the work)."""
    return db.session.scalar(_SUBSCRIBED, {"event_type": event_type})


def deliveries_start_after_commit() -> None:
    """Queue the organization's delivery job once the open transaction commits."""
    db.session.info.setdefault(QUEUED, set()).add(current_organization_id())


@event.listens_for(Session, "after_commit")
def _start_deliveries(session):
    for organization_id in session.info.pop(QUEUED, set()):
        if not has_app_context():
            return
        try:
            enqueue_scoped(
                "portal.webhooks.jobs:webhooks_deliver_due", organization_id=organization_id
            )
        except Exception:  # Redis down: the sweeper finds the due deliveries
            log.warning("webhook deliveries not queued", extra={"org": str(organization_id)})


@event.listens_for(Session, "after_rollback")
def _forget_deliveries(session):
    session.info.pop(QUEUED, None)


@atomic
def subscription_create(
    *, url: str, event_types: list[str], actor: Actor
) -> tuple[WebhookSubscription, str]:
    """Register a URL for some event types; its signing secret is returned only now."""
    secret = secrets.token_urlsafe(32)
    subscription = WebhookSubscription(
        url=url, secret=secret, event_types=event_types, created_by=actor.staff_user_id
    )
    db.session.add(subscription)
    db.session.flush()
    audit_record(
        action="webhooks.subscription_created",
        entity_type="webhook_subscription",
        entity_id=subscription.subscription_id,
        after={"url": url, "event_types": event_types},
        actor=actor,
    )
    return subscription, secret


@atomic
def subscription_disable(*, subscription_id: uuid.UUID, actor: Actor) -> WebhookSubscription:
    """Stop sending new events to a subscription (pending deliveries still go)."""
    subscription = db.session.scalar(
        sa.select(WebhookSubscription).where(
            WebhookSubscription.subscription_id == subscription_id,
            WebhookSubscription.disabled_at.is_(None),
        )
    )
    if subscription is None:
        raise LookupError(subscription_id)
    subscription.disabled_at = sa.func.now()
    db.session.flush()
    audit_record(
        action="webhooks.subscription_disabled",
        entity_type="webhook_subscription",
        entity_id=subscription_id,
        after={"url": subscription.url},
        actor=actor,
    )
    return subscription


@atomic
def delivery_redeliver(*, delivery_id: uuid.UUID, actor: Actor) -> WebhookDelivery:
    """Send a delivery again from the start (e.g. a failed one once the receiver is fixed)."""
    delivery = db.session.scalar(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.delivery_id == delivery_id)
        .values(status="pending", attempts=0, next_attempt_at=sa.func.now(), delivered_at=None)
        .returning(WebhookDelivery)
    )
    if delivery is None:
        raise LookupError(delivery_id)
    audit_record(
        action="webhooks.redelivered",
        entity_type="webhook_delivery",
        entity_id=delivery_id,
        after={"event_id": delivery.event_id, "subscription_id": delivery.subscription_id},
        actor=actor,
    )
    deliveries_start_after_commit()
    return delivery
