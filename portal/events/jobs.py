"""Worker side of events: apply batches set-based, dead-letter bad ones, sweep stalled ones.

Applying a batch and marking it processed happen in one transaction, so a worker killed
mid-batch leaves the events 'received' for the sweeper, and re-applying is harmless anyway
(tier updates ignore older events; purchases are keyed by order).
"""

import logging
import uuid
from collections import defaultdict

import sqlalchemy as sa

from portal.audit import SYSTEM_ACTOR
from portal.credit.services import usages_cancel_for_orders
from portal.customers.models import LOYALTY_TIERS
from portal.db import current_organization_id
from portal.events.models import TIER_EVENT
from portal.extensions import db
from portal.tasks import enqueue_scoped

log = logging.getLogger(__name__)
CANCELLED_EVENT = "orders.order.cancelled"
ORDER_EVENTS = {"orders.order.completed": "completed", CANCELLED_EVENT: "cancelled"}

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
                           event_occurred_at, order_number)
    SELECT DISTINCT ON (order_id) :org, order_id, customer_id, total, completed_at, status,
           occurred_at, order_number
    FROM unnest(CAST(:orders AS uuid[]), CAST(:customers AS uuid[]), CAST(:totals AS numeric[]),
                CAST(:completed AS timestamptz[]), CAST(:statuses AS text[]),
                CAST(:times AS timestamptz[]), CAST(:numbers AS text[]))
         AS o(order_id, customer_id, total, completed_at, status, occurred_at, order_number)
    ORDER BY order_id, occurred_at DESC
    ON CONFLICT (organization_id, order_id) DO UPDATE
    SET status = excluded.status, total = excluded.total, completed_at = excluded.completed_at,
        event_occurred_at = excluded.event_occurred_at, updated_at = now(),
        order_number = coalesce(excluded.order_number, purchases.order_number)
    WHERE purchases.event_occurred_at < excluded.event_occurred_at
    """
)
# Before an order batch: its customers, locked in id order. A second worker with orders of the
# same customers waits here until this batch commits, so its own last-purchase statement (a new
# snapshot in READ COMMITTED) sees these purchases too; without the lock, two batches could each
# write the maximum of only their own purchases.
_LOCK_CUSTOMERS = sa.text(
    """
    SELECT FROM customers WHERE customer_id = ANY(CAST(:customers AS uuid[]))
    ORDER BY customer_id FOR NO KEY UPDATE
    """
)
# The purchases' trigger has just refreshed these customers' summaries (the same transaction);
# only customers whose last purchase changed are written (an update of an indexed column).
_LAST_PURCHASE = sa.text(
    """
    UPDATE customers c SET last_purchase_at = s.last_purchase_at
    FROM purchase_summaries s
    WHERE s.customer_id = ANY(CAST(:customers AS uuid[])) AND c.customer_id = s.customer_id
      AND c.last_purchase_at IS DISTINCT FROM s.last_purchase_at
    """
)


# Claim, check and mark a batch in one statement: rows another worker holds are skipped (SKIP
# LOCKED) and only 'received' rows are taken, so no event is applied twice. Each event gets the
# reason it is a dead letter, or NULL; the apply statements below run in the same transaction,
# so a failure leaves the whole batch 'received'. Checking in SQL keeps the worker's Python
# free of per-event work (docs/benchmarks-worker.md).
_CLAIM = sa.text(
    r"""
    WITH claimed AS (
        SELECT event_id, event_type, occurred_at, payload -> 'data' AS data
        FROM event_inbox
        WHERE event_id = ANY(CAST(:ids AS uuid[])) AND status = 'received'
        FOR UPDATE SKIP LOCKED
    ),
    -- Materialized, so each check runs once per event (inlined, the UPDATE below evaluated the
    -- checks and the customer lookup once per reference to the verdict: three to six times).
    checked AS MATERIALIZED (
        SELECT event_id, event_type, occurred_at, data, CASE
            WHEN jsonb_typeof(data -> 'customer_id') IS DISTINCT FROM 'string'
              OR NOT input_is_valid(data ->> 'customer_id', 'uuid')
                THEN 'customer_id falta o no es un UUID'
            WHEN event_type = :tier_event THEN CASE
                WHEN jsonb_typeof(data -> 'new_tier') IS DISTINCT FROM 'string'
                  OR NOT (data ->> 'new_tier') = ANY(CAST(:tiers AS text[]))
                    THEN 'nivel desconocido: ' || left(coalesce(data ->> 'new_tier', 'None'), 40)
                END
            WHEN jsonb_typeof(data -> 'order_id') IS DISTINCT FROM 'string'
              OR NOT input_is_valid(data ->> 'order_id', 'uuid')
                THEN 'order_id falta o no es un UUID'
            WHEN coalesce(jsonb_typeof(data -> 'total'), '') NOT IN ('string', 'number')
              OR NOT input_is_valid(data ->> 'total', 'numeric')
                THEN 'total inválido'
            WHEN NOT (data ->> 'total')::numeric BETWEEN 0 AND 9999999999.99
              OR (data ->> 'total')::numeric = 'NaN'
                THEN 'total inválido'
            WHEN data ? 'order_number' AND (jsonb_typeof(data -> 'order_number') <> 'string'
              OR data ->> 'order_number' !~ '^[A-Za-z0-9][A-Za-z0-9-]{0,29}$')
                THEN 'order_number inválido'
            WHEN jsonb_typeof(data -> 'completed_at') IS DISTINCT FROM 'string'
              OR data ->> 'completed_at' !~ '^\d{4}-\d{2}-\d{2}.*(Z|[+-]\d{2}(:?\d{2})?)$'
              OR NOT input_is_valid(data ->> 'completed_at', 'timestamptz')
                THEN 'completed_at inválido (ISO 8601 con zona horaria)'
        END AS reason
        FROM claimed
    ),
    known AS MATERIALIZED (
        SELECT checked.*, CASE
            WHEN reason IS NULL AND NOT EXISTS (
                SELECT FROM customers c WHERE c.customer_id = (data ->> 'customer_id')::uuid)
                THEN 'cliente desconocido en esta organización'
            ELSE reason
        END AS verdict
        FROM checked
    )
    UPDATE event_inbox i
    SET status = CASE WHEN k.verdict IS NULL THEN 'processed' ELSE 'dead' END,
        last_error = k.verdict, processed_at = now(), attempts = i.attempts + 1
    FROM known k
    WHERE i.event_id = k.event_id
    RETURNING k.event_type, k.occurred_at, k.data ->> 'customer_id' AS customer_id,
              k.data ->> 'new_tier' AS new_tier, k.data ->> 'order_id' AS order_id,
              k.data ->> 'total' AS total, k.data ->> 'completed_at' AS completed_at,
              k.data ->> 'order_number' AS order_number, k.verdict
    """
)


def process_events(event_ids: list[str]) -> dict:
    """Apply a batch of one organization's events; bad ones become dead letters with a reason."""
    rows = db.session.execute(
        _CLAIM, {"ids": event_ids, "tier_event": TIER_EVENT, "tiers": list(LOYALTY_TIERS)}
    ).all()
    tiers = [row for row in rows if row.verdict is None and row.event_type == TIER_EVENT]
    orders = [row for row in rows if row.verdict is None and row.event_type != TIER_EVENT]
    if orders:
        customers = sorted({row.customer_id for row in tiers + orders})
        db.session.execute(_LOCK_CUSTOMERS, {"customers": customers})
    if tiers:
        db.session.execute(
            _APPLY_TIERS,
            {
                "customers": [row.customer_id for row in tiers],
                "tiers": [row.new_tier for row in tiers],
                "times": [row.occurred_at for row in tiers],
            },
        )
    if orders:
        db.session.execute(
            _APPLY_ORDERS,
            {
                "org": current_organization_id(),
                "orders": [row.order_id for row in orders],
                "customers": [row.customer_id for row in orders],
                "totals": [row.total for row in orders],
                "completed": [row.completed_at for row in orders],
                "statuses": [ORDER_EVENTS[row.event_type] for row in orders],
                "times": [row.occurred_at for row in orders],
                "numbers": [row.order_number for row in orders],
            },
        )
        db.session.execute(
            _LAST_PURCHASE, {"customers": sorted({row.customer_id for row in orders})}
        )
        cancelled = [uuid.UUID(row.order_id) for row in orders if row.event_type == CANCELLED_EVENT]
        if cancelled:
            # Last: the credit service commits the batch as one unit with its cancellations.
            usages_cancel_for_orders(order_ids=cancelled, actor=SYSTEM_ACTOR)
        from portal.segments.jobs import segments_recompute_soon

        segments_recompute_soon()
    result = {"processed": len(tiers) + len(orders), "dead": len(rows) - len(tiers) - len(orders)}
    log.info("events applied", extra=result)
    return result


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
