"""Two years of purchases, and this month's order and tier events through the real inbox.

The history before this month is bulk-loaded into the purchases projection (COPY); the last
INBOX_DAYS of orders, the tier changes and a few malformed events are validated and stored by the
ingestion service and applied by the worker's `process_events`, as if they had just arrived.
Finally last_purchase_at is set from the purchases in one statement, so it always agrees.
"""

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.clock import BUSINESS_ZONE
from portal.customers.models import LOYALTY_TIERS, Customer
from portal.db import organization_scope
from portal.events.ingest import inbox_write, validate_envelope
from portal.events.jobs import TIER_EVENT, process_events
from portal.extensions import db

BATCH = 250  # process_events' cost per event grows with its batch
INBOX_DAYS = 30
FIRST_ORDER_NUMBER = 12_000  # the Orders service's numbering, F-0012000 onwards
PURCHASE_COLUMNS = [
    "order_id",
    "order_number",
    "customer_id",
    "total",
    "completed_at",
    "status",
    "event_occurred_at",
]
# name: (weight, orders, last purchase days ago, first purchase days ago, ticket in dollars).
# The spread gives every RFM segment customers: frequent recent big spenders (champions),
# steady buyers (loyal), a first purchase this month (new), lapsed regulars (at risk), one or
# two purchases long ago (lost), and customers who never bought.
PERSONAS = {
    "champion": (12, (14, 30), (0, 20), (500, 730), (60, 400)),
    "loyal": (14, (9, 18), (10, 60), (400, 730), (25, 140)),
    "promising": (16, (2, 6), (5, 75), (60, 400), (20, 150)),
    "newcomer": (10, (1, 1), (0, 30), None, (15, 250)),
    "occasional": (10, (2, 4), (60, 200), (200, 600), (15, 90)),
    "slipping": (14, (6, 15), (150, 400), (500, 730), (30, 220)),
    "lost": (14, (1, 2), (300, 730), (500, 730), (10, 80)),
    "no_purchase": (10, (0, 0), None, None, None),
}
CANCELLED_SHARE = 0.03
TIER_CHANGE_SHARE = 0.12


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _moment(day: date, rng: random.Random) -> datetime:
    """A time during shop hours (Panama) on `day`, never in the future."""
    local = datetime.combine(day, time(9), BUSINESS_ZONE) + timedelta(
        minutes=rng.randint(0, 11 * 60)
    )
    return min(local.astimezone(UTC), datetime.now(UTC) - timedelta(minutes=rng.randint(5, 600)))


def _envelope(organization_id, rng, event_type: str, occurred_at: datetime, data: dict) -> dict:
    return {
        "event_id": str(_uuid(rng)),
        "event_type": event_type,
        "occurred_at": occurred_at.isoformat(),
        "organization_id": str(organization_id),
        "data": data,
    }


def _orders(organization_id, rng, customer_id, persona: str, today: date) -> list[dict]:
    _, count_range, last_range, first_range, ticket = PERSONAS[persona]
    count = rng.randint(*count_range)
    if not count:
        return []
    last_day = today - timedelta(days=rng.randint(*last_range))
    first_day = today - timedelta(days=rng.randint(*first_range)) if first_range else last_day
    first_day = min(first_day, last_day)
    span = (last_day - first_day).days
    days = sorted(
        [first_day, last_day]
        + [first_day + timedelta(days=rng.randint(0, span)) for _ in range(count - 2)]
    )[-count:]
    events = []
    for day in days:
        completed = _moment(day, rng)
        total = Decimal(rng.randint(ticket[0] * 100, ticket[1] * 100)) / 100
        data = {
            "order_id": str(_uuid(rng)),
            "customer_id": str(customer_id),
            "total": str(total),
            "completed_at": completed.isoformat(),
        }
        events.append(_envelope(organization_id, rng, "orders.order.completed", completed, data))
        later = completed + timedelta(days=rng.randint(1, 3))
        if rng.random() < CANCELLED_SHARE and later < datetime.now(UTC):
            events.append(_envelope(organization_id, rng, "orders.order.cancelled", later, data))
    return events


def _tier_change(organization_id, rng, customer_id, old_tier: str, today: date) -> dict:
    new_tier = rng.choice([tier for tier in LOYALTY_TIERS if tier != old_tier])
    occurred = _moment(today - timedelta(days=rng.randint(0, INBOX_DAYS - 2)), rng)
    data = {"customer_id": str(customer_id), "old_tier": old_tier, "new_tier": new_tier}
    return _envelope(organization_id, rng, TIER_EVENT, occurred, data)


def _dead_letters(organization_id, rng, customer_ids: list, today: date) -> list[dict]:
    """Events the Orders and Pricing services really do send wrong now and then."""
    recent = [_moment(today - timedelta(days=days), rng) for days in (1, 2, 3, 5)]
    known = str(customer_ids[0])
    order = {"order_id": str(_uuid(rng)), "total": "89.90", "completed_at": recent[0].isoformat()}
    return [
        _envelope(
            organization_id,
            rng,
            TIER_EVENT,
            recent[0],
            {"customer_id": known, "old_tier": "gold", "new_tier": "diamante"},
        ),
        _envelope(
            organization_id,
            rng,
            "orders.order.completed",
            recent[1],
            order | {"customer_id": str(_uuid(rng))},
        ),
        _envelope(
            organization_id,
            rng,
            "orders.order.completed",
            recent[2],
            order | {"customer_id": known, "total": "-15.00"},
        ),
        _envelope(
            organization_id,
            rng,
            TIER_EVENT,
            recent[3],
            {"customer_id": "CLI-10293", "old_tier": "bronze", "new_tier": "silver"},
        ),
    ]


def events_seed(*, organization_id: uuid.UUID, seed: int, today: date) -> int:
    """Deliver the organization's purchase history, tier changes and dead letters; commits."""
    rng = random.Random(seed)
    with organization_scope(organization_id):
        customers = db.session.execute(
            sa.select(Customer.customer_id, Customer.loyalty_tier).order_by(Customer.customer_id)
        ).all()
        db.session.rollback()
    names, weights = list(PERSONAS), [persona[0] for persona in PERSONAS.values()]
    raw: list[dict] = []
    for customer_id, tier in customers:
        persona = rng.choices(names, weights)[0]
        raw += _orders(organization_id, rng, customer_id, persona, today)
        if persona != "no_purchase" and rng.random() < TIER_CHANGE_SHARE:
            raw.append(_tier_change(organization_id, rng, customer_id, tier, today))
    if customers:
        raw += _dead_letters(organization_id, rng, [row.customer_id for row in customers], today)
    raw.sort(key=lambda event: event["occurred_at"])
    # Numbered as the Orders service does, in the order they were placed (a cancellation
    # shares its order's data, so it carries the same number).
    completed = (event for event in raw if event["event_type"] == "orders.order.completed")
    for number, event in enumerate(completed, start=FIRST_ORDER_NUMBER):
        event["data"].setdefault("order_number", f"F-{number:07d}")
    recent = (datetime.now(UTC) - timedelta(days=INBOX_DAYS)).isoformat()
    history = [event for event in raw if event["occurred_at"] < recent]
    live = [event for event in raw if event["occurred_at"] >= recent]
    from portal.seed import bulk_load

    bulk_load("purchases", PURCHASE_COLUMNS, organization_id, _purchase_rows(history))
    for start in range(0, len(live), BATCH):
        envelopes = [
            validate_envelope(event, position)
            for position, event in enumerate(live[start : start + BATCH])
        ]
        inbox_write(envelopes)
        db.session.commit()
        with organization_scope(organization_id):
            process_events([str(envelope.event_id) for envelope in envelopes])
            db.session.commit()
    with organization_scope(organization_id):
        db.session.execute(LAST_PURCHASE)
        # As if each event had arrived moments after it happened, not all at seeding time.
        db.session.execute(
            sa.text(
                "UPDATE event_inbox SET received_at = occurred_at + interval '2 seconds',"
                " processed_at = occurred_at + interval '3 seconds'"
            )
        )
        db.session.commit()
    return len(live)


LAST_PURCHASE = sa.text(
    """
    UPDATE customers c SET last_purchase_at = p.last_purchase
    FROM (SELECT customer_id, max(completed_at) AS last_purchase FROM purchases
          WHERE status = 'completed' GROUP BY customer_id) p
    WHERE p.customer_id = c.customer_id
    """
)


def _purchase_rows(events: list[dict]):
    """The purchases projection of order events (the last event of an order wins)."""
    orders: dict[str, tuple] = {}
    for event in events:
        if event["event_type"] == TIER_EVENT:
            continue
        data = event["data"]
        status = "cancelled" if event["event_type"].endswith("cancelled") else "completed"
        orders[data["order_id"]] = (
            data["order_id"],
            data.get("order_number"),
            data["customer_id"],
            data["total"],
            data["completed_at"],
            status,
            event["occurred_at"],
        )
    return orders.values()
