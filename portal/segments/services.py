"""RFM segmentation as one set-based statement per organization (never a Python loop).

R, F and M are tie-aware quintiles over the organization's customers with completed purchases:
score = least(5, 1 + floor(5 * percent_rank())), ordered worst to best, where percent_rank() is
the share of the other buyers strictly worse than this one (a tie group takes its lowest
position), so the worst buyers always score 1. Recency is ordered by the day of the last
purchase (Panama), oldest first, so R = 5 for the most recent buyers. Equal inputs give equal
scores; the customer id never decides. The formula and its consequences in product terms:
docs/segments.md.
First matching rule wins: champions (R>=4, F>=4, M>=4), loyal (R>=3, F>=4), new (R>=4, F=1),
potential_loyalist (R>=3), at_risk (R<=2, F>=3), lost (R<=2, F<=2). Customers without purchases
are 'new' with no scores. VIP: champions, or at most 5 % of the other buyers have a higher
lifetime value. At risk: at_risk, or lost with M>=4.
"""

from datetime import date

import sqlalchemy as sa

from portal import clock
from portal.db import current_organization_id
from portal.extensions import db
from portal.segments.models import SEGMENTS, CustomerSegment
from portal.webhooks.services import FAN_OUT, deliveries_start_after_commit, outbox_subscribed

_SEGMENTED = """
    WITH stats AS (
        SELECT customer_id,
               (max(completed_at) AT TIME ZONE 'America/Panama')::date AS last_purchase_day,
               count(*) AS orders, sum(total) AS lifetime_value
        FROM purchases WHERE status = 'completed'
        GROUP BY customer_id
    ),
    scored AS (
        SELECT stats.*,
               -- 1 + floor(5 * percent_rank()), in integers so no boundary rounds down
               least(5, 1 + 5 * (rank() OVER (ORDER BY last_purchase_day) - 1) / buyers) AS r,
               least(5, 1 + 5 * (rank() OVER (ORDER BY orders) - 1) / buyers) AS f,
               least(5, 1 + 5 * (rank() OVER (ORDER BY lifetime_value) - 1) / buyers) AS m,
               percent_rank() OVER (ORDER BY lifetime_value DESC) AS value_share
        FROM (SELECT stats.*, greatest(count(*) OVER () - 1, 1) AS buyers FROM stats) stats
    ),
    segmented AS (
        SELECT scored.*,
               CASE
                   WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'champions'
                   WHEN r >= 3 AND f >= 4 THEN 'loyal'
                   WHEN r >= 4 AND f = 1 THEN 'new'
                   WHEN r >= 3 THEN 'potential_loyalist'
                   WHEN r <= 2 AND f >= 3 THEN 'at_risk'
                   ELSE 'lost'
               END AS segment_code
        FROM scored
    )
"""
_UPSERT = """
    INSERT INTO customer_segments (
        organization_id, customer_id, segment_code, rfm_recency, rfm_frequency, rfm_monetary,
        lifetime_value, average_order_value, total_orders, days_since_last_purchase,
        is_vip, is_at_risk, calculated_at, updated_at
    )
    SELECT :org, c.customer_id, coalesce(s.segment_code, 'new'), s.r, s.f, s.m,
           coalesce(s.lifetime_value, 0), coalesce(round(s.lifetime_value / s.orders, 2), 0),
           coalesce(s.orders, 0), :today - s.last_purchase_day,
           coalesce(s.segment_code = 'champions' OR s.value_share <= 0.05, false),
           coalesce(s.segment_code = 'at_risk' OR (s.segment_code = 'lost' AND s.m >= 4), false),
           now(), now()
    FROM customers c LEFT JOIN segmented s ON s.customer_id = c.customer_id
    ON CONFLICT (organization_id, customer_id) DO UPDATE SET
        segment_code = excluded.segment_code, rfm_recency = excluded.rfm_recency,
        rfm_frequency = excluded.rfm_frequency, rfm_monetary = excluded.rfm_monetary,
        lifetime_value = excluded.lifetime_value,
        average_order_value = excluded.average_order_value,
        total_orders = excluded.total_orders,
        days_since_last_purchase = excluded.days_since_last_purchase,
        is_vip = excluded.is_vip, is_at_risk = excluded.is_at_risk,
        calculated_at = excluded.calculated_at, updated_at = excluded.updated_at
"""
# The CTEs all read the snapshot from before the upsert, so `previous` holds the old segments:
# a customer whose segment changed gets a row in customer_segment_changes (its timeline).
_CHANGES = (
    _SEGMENTED
    + """,
    previous AS (SELECT customer_id, segment_code FROM customer_segments),
    upserted AS ("""
    + _UPSERT
    + """ RETURNING customer_id, segment_code),
    changes AS (
        INSERT INTO customer_segment_changes (organization_id, customer_id, previous_segment,
                                              segment)
        SELECT :org, u.customer_id, p.segment_code, u.segment_code
        FROM upserted u JOIN previous p ON p.customer_id = u.customer_id
        WHERE p.segment_code IS DISTINCT FROM u.segment_code
        RETURNING customer_id, previous_segment, segment
    )"""
)
_RECOMPUTE = sa.text(_CHANGES + " SELECT (SELECT count(*) FROM upserted) AS written")
# The same, also publishing customer.segment_changed for every change.
_RECOMPUTE_PUBLISHING = sa.text(
    _CHANGES
    + """,
    events AS (
        INSERT INTO outbox_events (organization_id, event_type, data)
        SELECT :org, 'customer.segment_changed',
               jsonb_build_object('customer_id', c.customer_id,
                                  'previous_segment', c.previous_segment,
                                  'segment', c.segment)
        FROM changes c
        RETURNING organization_id, event_id, event_type
    ),
    fanned AS ("""
    + FAN_OUT.format(events="events")
    + """ RETURNING delivery_id)
    SELECT (SELECT count(*) FROM upserted) AS written, (SELECT count(*) FROM fanned) AS fanned
    """
)


def segments_recompute(*, today: date | None = None) -> int:
    """Recompute every customer's segment of the current organization; returns rows written.

    Changes of segment are recorded for the timeline, and published (customer.segment_changed)
    only when some subscription wants them.
    """
    parameters = {"org": current_organization_id(), "today": today or clock.today()}
    if not outbox_subscribed("customer.segment_changed"):
        return db.session.execute(_RECOMPUTE, parameters).scalar_one()
    written, fanned = db.session.execute(_RECOMPUTE_PUBLISHING, parameters).one()
    if fanned:
        deliveries_start_after_commit()
    return written


def segment_distribution() -> list[dict]:
    """Customers and value per segment, in the segments' display order (empty ones included)."""
    rows = {
        row.segment_code: row
        for row in db.session.execute(
            sa.select(
                CustomerSegment.segment_code,
                sa.func.count().label("customers"),
                sa.func.coalesce(sa.func.sum(CustomerSegment.lifetime_value), 0).label("value"),
            ).group_by(CustomerSegment.segment_code)
        )
    }
    return [
        {
            "code": code,
            "label": label,
            "customers": rows[code].customers if code in rows else 0,
            "value": rows[code].value if code in rows else 0,
        }
        for code, label in SEGMENTS.items()
    ]


def segments_last_computed():
    """When segments were last computed for this organization, if ever."""
    return db.session.scalar(sa.select(sa.func.max(CustomerSegment.calculated_at)))
