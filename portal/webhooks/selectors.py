"""What the webhooks page shows: subscriptions, recent deliveries and their attempts."""

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from portal.extensions import db
from portal.webhooks.models import (
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)


@dataclass(frozen=True)
class DeliveryLog:
    """Recent deliveries with their event and URL, and every attempt of each."""

    deliveries: list
    attempts: dict


def subscriptions_list() -> list:
    """The organization's subscriptions, active first, without their secrets."""
    return db.session.execute(
        sa.select(
            WebhookSubscription.subscription_id,
            WebhookSubscription.url,
            WebhookSubscription.event_types,
            WebhookSubscription.created_at,
            WebhookSubscription.disabled_at,
        ).order_by(
            WebhookSubscription.disabled_at.is_not(None), WebhookSubscription.created_at.desc()
        )
    ).all()


def delivery_log(*, status: str | None = None, limit: int = 50) -> DeliveryLog:
    """The latest deliveries (optionally of one status) and their attempts, in two statements."""
    statement = (
        sa.select(
            WebhookDelivery,
            OutboxEvent.event_type,
            OutboxEvent.occurred_at,
            WebhookSubscription.url,
        )
        .join(OutboxEvent, OutboxEvent.event_id == WebhookDelivery.event_id)
        .join(
            WebhookSubscription,
            WebhookSubscription.subscription_id == WebhookDelivery.subscription_id,
        )
        .order_by(WebhookDelivery.created_at.desc())
        .limit(limit)
    )
    if status:
        statement = statement.where(WebhookDelivery.status == status)
    deliveries = db.session.execute(statement).all()
    attempts = defaultdict(list)
    ids = [row.WebhookDelivery.delivery_id for row in deliveries]
    if ids:
        for attempt in db.session.scalars(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.attempt_id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return DeliveryLog(deliveries, dict(attempts))
