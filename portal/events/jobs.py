"""Worker side of events: apply batches set-based, dead-letter bad ones, sweep stalled ones.

Applying a batch and marking it processed happen in one transaction, so a worker killed
mid-batch leaves the events 'received' for the sweeper, and re-applying is harmless anyway
(tier updates ignore older events; purchases are keyed by order).
"""

import logging
import uuid
from collections import defaultdict
from datetime import datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from portal.customers.models import LOYALTY_TIERS, Customer
from portal.db import current_organization_id
from portal.events.models import InboxEvent
from portal.extensions import db
from portal.tasks import enqueue_scoped

log = logging.getLogger(__name__)
TIER_EVENT = "pricing.loyalty.tier_changed"
ORDER_EVENTS = {"orders.order.completed": "completed", "orders.order.cancelled": "cancelled"}

_APPLY_TIERS = sa.text(
    """
    UPDATE customers c
    SET loyalty_tier = v.new_tier, loyalty_tier_changed_at = v.occurred_at
    FROM (
        SELECT DISTINCT ON (customer_id) customer_id, new_tier, occurred_at
        FROM unnest(CAST(:customers AS uuid[]), CAST(:tiers AS text[]),
                    CAST(:times AS timestamptz[])) AS t(customer_id, new_tier, occurred_at)
        ORDER BY customer_id, occurred_at DESC
    ) v
    WHERE c.customer_id = v.customer_id
      AND (c.loyalty_tier_changed_at IS NULL OR c.loyalty_tier_changed_at < v.occurred_at)
    """
)
_APPLY_ORDERS = sa.text(
    """
    INSERT INTO purchases (organization_id, order_id, customer_id, total, completed_at, status,
                           event_occurred_at)
    SELECT DISTINCT ON (order_id) :org, order_id, customer_id, total, completed_at, status,
           occurred_at
    FROM unnest(CAST(:orders AS uuid[]), CAST(:customers AS uuid[]), CAST(:totals AS numeric[]),
                CAST(:completed AS timestamptz[]), CAST(:statuses AS text[]),
                CAST(:times AS timestamptz[]))
         AS o(order_id, customer_id, total, completed_at, status, occurred_at)
    ORDER BY order_id, occurred_at DESC
    ON CONFLICT (organization_id, order_id) DO UPDATE
    SET status = excluded.status, total = excluded.total, completed_at = excluded.completed_at,
        event_occurred_at = excluded.event_occurred_at, updated_at = now()
    WHERE purchases.event_occurred_at < excluded.event_occurred_at
    """
)
_LAST_PURCHASE = sa.text(
    """
    UPDATE customers c SET last_purchase_at = (
        SELECT max(p.completed_at) FROM purchases p
        WHERE p.customer_id = c.customer_id AND p.status = 'completed'
    )
    WHERE c.customer_id = ANY(CAST(:customers AS uuid[]))
    """
)


def _uuid(value):
    return uuid.UUID(value) if isinstance(value, str) else None


def _check(event) -> tuple[dict | None, str | None]:
    """The validated data of one event, or the reason it is a dead letter."""
    data = event.payload.get("data", {})
    customer_id = _safe(lambda: _uuid(data.get("customer_id")))
    if customer_id is None:
        return None, "customer_id falta o no es un UUID"
    if event.event_type == TIER_EVENT:
        if data.get("new_tier") not in LOYALTY_TIERS:
            return None, f"nivel desconocido: {str(data.get('new_tier'))[:40]}"
        return {"customer_id": customer_id, "new_tier": data["new_tier"]}, None
    order_id = _safe(lambda: _uuid(data.get("order_id")))
    total = _safe(lambda: Decimal(str(data.get("total"))))
    completed_at = _safe(lambda: datetime.fromisoformat(data.get("completed_at")))
    if order_id is None:
        return None, "order_id falta o no es un UUID"
    if total is None or not total.is_finite() or total < 0 or total >= Decimal("1e10"):
        return None, "total inválido"
    if completed_at is None or completed_at.tzinfo is None:
        return None, "completed_at inválido (ISO 8601 con zona horaria)"
    return {
        "customer_id": customer_id,
        "order_id": order_id,
        "total": total.quantize(Decimal("0.01")),
        "completed_at": completed_at,
    }, None


def _safe(function):
    try:
        return function()
    except (ValueError, TypeError, InvalidOperation, AttributeError):
        return None


def process_events(event_ids: list[str]) -> dict:
    """Apply a batch of one organization's events; bad ones become dead letters with a reason."""
    # Rows, not ORM objects: loading 1,000 InboxEvent instances was most of the worker's time.
    # SKIP LOCKED: a batch another worker holds is that worker's; 'received' only: never twice.
    events = db.session.execute(
        sa.select(
            InboxEvent.event_id, InboxEvent.event_type, InboxEvent.occurred_at, InboxEvent.payload
        )
        .where(
            InboxEvent.event_id
            == sa.func.any(sa.cast([uuid.UUID(e) for e in event_ids], ARRAY(UUID)))
        )
        .where(InboxEvent.status == "received")
        .with_for_update(skip_locked=True)
    ).all()
    checked = [(event, *_check(event)) for event in events]
    known = set(
        db.session.scalars(
            sa.select(Customer.customer_id).where(
                Customer.customer_id
                == sa.func.any(
                    sa.cast(list({d["customer_id"] for _, d, _ in checked if d}), ARRAY(UUID))
                )
            )
        )
    )
    dead: dict[str, list[uuid.UUID]] = defaultdict(list)
    tiers, orders = [], []
    for event, data, reason in checked:
        if data is not None and data["customer_id"] not in known:
            reason = "cliente desconocido en esta organización"
        if reason:
            dead[reason].append(event.event_id)
        elif event.event_type == TIER_EVENT:
            tiers.append((event, data))
        else:
            orders.append((event, data))
    if tiers:
        db.session.execute(
            _APPLY_TIERS,
            {
                "customers": [d["customer_id"] for _, d in tiers],
                "tiers": [d["new_tier"] for _, d in tiers],
                "times": [e.occurred_at for e, _ in tiers],
            },
        )
    if orders:
        db.session.execute(
            _APPLY_ORDERS,
            {
                "org": current_organization_id(),
                "orders": [d["order_id"] for _, d in orders],
                "customers": [d["customer_id"] for _, d in orders],
                "totals": [d["total"] for _, d in orders],
                "completed": [d["completed_at"] for _, d in orders],
                "statuses": [ORDER_EVENTS[e.event_type] for e, _ in orders],
                "times": [e.occurred_at for e, _ in orders],
            },
        )
        db.session.execute(
            _LAST_PURCHASE, {"customers": list({d["customer_id"] for _, d in orders})}
        )
    applied = [event.event_id for event, _ in tiers + orders]
    _mark(applied, "processed", None)
    for reason, ids in dead.items():
        _mark(ids, "dead", reason)
    if orders:
        from portal.segments.jobs import segments_recompute_soon

        segments_recompute_soon()
    result = {"processed": len(applied), "dead": sum(len(ids) for ids in dead.values())}
    log.info("events applied", extra=result)
    return result


def _mark(event_ids: list[uuid.UUID], status: str, reason: str | None) -> None:
    if event_ids:
        db.session.execute(
            sa.update(InboxEvent)
            .where(InboxEvent.event_id == sa.func.any(sa.cast(event_ids, ARRAY(UUID))))
            .values(
                status=status,
                last_error=reason,
                processed_at=sa.func.now(),
                attempts=InboxEvent.attempts + 1,
            )
        )


def inbox_sweep(older_than_seconds: int = 120) -> int:
    """Scheduled: re-enqueue events received a while ago but not processed (Redis/worker down)."""
    stalled = db.session.execute(
        sa.text("SELECT organization_id, event_id FROM inbox_stalled(make_interval(secs => :age))"),
        {"age": older_than_seconds},
    ).all()
    db.session.rollback()
    by_organization: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in stalled:
        by_organization[row.organization_id].append(str(row.event_id))
    for organization_id, event_ids in by_organization.items():
        for start in range(0, len(event_ids), 1000):
            enqueue_scoped(
                "portal.events.jobs:process_events",
                organization_id=organization_id,
                event_ids=event_ids[start : start + 1000],
            )
    if stalled:
        log.warning("re-enqueued stalled events", extra={"count": len(stalled)})
    return len(stalled)
